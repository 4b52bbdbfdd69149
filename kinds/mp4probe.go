package kinds

import (
	"encoding/binary"
	"io"
	"os"
	"strings"

	"github.com/spoolrun/spool"
)

// probeMP4 reads the properties of an MP4 or QuickTime file from its
// boxes, as ffprobe would report them, without starting ffprobe: starting
// it costs a good part of a second on a busy machine, more than a short
// transcode's own overhead. It reports false for anything it does not know
// for sure (another container, a codec it does not map, a fragmented or
// damaged file, an image), which FFprobeProber then hands to ffprobe.
func probeMP4(path string, basic *spool.File) (*spool.File, bool) {
	f, err := os.Open(path)
	if err != nil {
		return nil, false
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, false
	}
	var brand string
	var moov []byte
	for off := int64(0); off < st.Size(); {
		typ, start, size, ok := boxAt(f, off, st.Size())
		if !ok || off == 0 && typ != "ftyp" {
			return nil, false
		}
		switch typ {
		case "ftyp":
			b := make([]byte, 4)
			if _, err := f.ReadAt(b, start); err != nil {
				return nil, false
			}
			brand = strings.TrimSpace(string(b))
		case "moov":
			if size > 64<<20 {
				return nil, false
			}
			moov = make([]byte, size)
			if _, err := f.ReadAt(moov, start); err != nil {
				return nil, false
			}
		case "moof":
			return nil, false // fragmented: durations are in the fragments
		}
		off = start + size
	}
	if moov == nil || (brand != "isom" && brand != "mp42" && brand != "mp41" && brand != "iso5" && brand != "qt" && brand != "M4A") {
		return nil, false
	}
	return fromMoov(moov, brand, basic, st.Size())
}

// boxAt reads the header of the box at off and returns its type and where
// its body starts and how long it is.
func boxAt(r io.ReaderAt, off, fileSize int64) (typ string, start, size int64, ok bool) {
	var h [16]byte
	if _, err := r.ReadAt(h[:8], off); err != nil {
		return "", 0, 0, false
	}
	size, start = int64(binary.BigEndian.Uint32(h[:4])), off+8
	switch size {
	case 0:
		size = fileSize - off
	case 1:
		if _, err := r.ReadAt(h[8:16], off+8); err != nil {
			return "", 0, 0, false
		}
		size, start = int64(binary.BigEndian.Uint64(h[8:16])), off+16
	}
	if size < start-off || off+size > fileSize {
		return "", 0, 0, false
	}
	return string(h[4:8]), start, size - (start - off), true
}

// children returns the boxes inside body, by type, in order.
func children(body []byte) map[string][][]byte {
	out := map[string][][]byte{}
	for len(body) >= 8 {
		size := int(binary.BigEndian.Uint32(body[:4]))
		typ := string(body[4:8])
		if size < 8 || size > len(body) {
			return out
		}
		out[typ] = append(out[typ], body[8:size])
		body = body[size:]
	}
	return out
}

// mp4Codecs maps sample entry types to ffprobe's codec names.
var mp4Codecs = map[string]string{
	"avc1": "h264", "avc3": "h264", "hvc1": "hevc", "hev1": "hevc", "av01": "av1", "vp09": "vp9",
	"mp4a": "aac", "Opus": "opus", "fLaC": "flac", ".mp3": "mp3", "ac-3": "ac3", "ec-3": "eac3",
}

type mp4Track struct {
	handler        string // vide, soun
	codec          string
	duration       float64
	samples        int64
	language       string
	codedW, codedH int // the sample entry's size, before rotation
}

func fromMoov(moov []byte, brand string, basic *spool.File, fileSize int64) (*spool.File, bool) {
	boxes := children(moov)
	mvhd := first(boxes["mvhd"])
	timescale, duration, ok := timing(mvhd, 12)
	if !ok || timescale == 0 {
		return nil, false
	}
	var video, audio *mp4Track
	for _, trak := range boxes["trak"] {
		t, ok := readTrak(trak)
		if !ok {
			return nil, false
		}
		switch {
		case t.handler == "vide" && video == nil:
			video = t
		case t.handler == "soun" && audio == nil:
			audio = t
		}
	}
	f := *basic
	switch {
	case video != nil:
		f.Kind, f.Codec = "video", video.codec
	case audio != nil:
		f.Kind, f.Codec = "audio", audio.codec
	default:
		return nil, false
	}
	sound := f.Kind == "audio"
	f.Type, f.Container = pick(sound, "audio/mp4", "video/mp4"), "mp4"
	if brand == "qt" {
		f.Type, f.Container = "video/quicktime", "mov"
	}
	f.Duration = float64(duration) / float64(timescale)
	if f.Duration <= 0 {
		return nil, false
	}
	f.Bitrate = int64(float64(fileSize*8) / f.Duration)
	if video != nil {
		f.Width, f.Height = video.codedW, video.codedH
		f.Orientation = orientation(f.Width, f.Height)
		f.Frames = int(video.samples)
		if video.duration > 0 {
			f.FPS = float64(video.samples) / video.duration
		}
	}
	if audio != nil && audio.language != "" && audio.language != "und" {
		f.Language = audio.language
	}
	return &f, true
}

func first(l [][]byte) []byte {
	if len(l) == 0 {
		return nil
	}
	return l[0]
}

// timing reads the timescale and duration of an mvhd or mdhd box, whose
// version 0 has them at v0 (32-bit duration) and version 1 at v0+8 with a
// 64-bit duration.
func timing(b []byte, v0 int) (timescale uint32, duration uint64, ok bool) {
	if len(b) < 4 {
		return 0, 0, false
	}
	if b[0] == 1 {
		at := v0 + 8
		if len(b) < at+12 {
			return 0, 0, false
		}
		return binary.BigEndian.Uint32(b[at:]), binary.BigEndian.Uint64(b[at+4:]), true
	}
	if len(b) < v0+8 {
		return 0, 0, false
	}
	return binary.BigEndian.Uint32(b[v0:]), uint64(binary.BigEndian.Uint32(b[v0+4:])), true
}

func readTrak(trak []byte) (*mp4Track, bool) {
	t := &mp4Track{}
	boxes := children(trak)
	tkhd := first(boxes["tkhd"])
	if len(tkhd) < 84 {
		return nil, false
	}
	matrix := tkhd[40:]
	if tkhd[0] == 1 {
		if len(tkhd) < 96 {
			return nil, false
		}
		matrix = tkhd[52:]
	}
	// Any turn (a ≠ 1 or b ≠ 0, in 16.16 fixed point): let ffprobe say
	// which way, so that Rotation is reported as it reports it.
	a, b := int32(binary.BigEndian.Uint32(matrix[0:])), int32(binary.BigEndian.Uint32(matrix[4:]))
	if a != 1<<16 || b != 0 {
		return nil, false
	}
	if len(boxes["edts"]) > 0 && hasShiftingEdit(first(boxes["edts"])) {
		return nil, false // an edit list changes what plays; let ffprobe say
	}
	mdia := children(first(boxes["mdia"]))
	hdlr := first(mdia["hdlr"])
	if len(hdlr) < 12 {
		return nil, false
	}
	t.handler = string(hdlr[8:12])
	mdhd := first(mdia["mdhd"])
	timescale, duration, ok := timing(mdhd, 12)
	if !ok || timescale == 0 {
		return nil, false
	}
	t.duration = float64(duration) / float64(timescale)
	lang := 20
	if mdhd[0] == 1 {
		lang = 32
	}
	if len(mdhd) >= lang+2 {
		p := binary.BigEndian.Uint16(mdhd[lang:])
		l := []byte{byte(p>>10&31) + 0x60, byte(p>>5&31) + 0x60, byte(p&31) + 0x60}
		switch {
		case strings.Trim(string(l), "abcdefghijklmnopqrstuvwxyz") == "":
			t.language = string(l)
		case p < 0x400 && t.handler == "soun":
			return nil, false // a QuickTime (Macintosh) language code, which ffprobe maps
		}
	}
	if t.handler != "vide" && t.handler != "soun" {
		return t, true // subtitles, timecodes: not counted
	}
	stbl := children(first(children(first(mdia["minf"]))["stbl"]))
	stsd := first(stbl["stsd"])
	if len(stsd) < 16 {
		return nil, false
	}
	entry := stsd[8:]
	if t.codec, ok = mp4Codecs[string(entry[4:8])]; !ok {
		return nil, false
	}
	if t.handler == "vide" {
		if len(entry) < 36 {
			return nil, false
		}
		t.codedW, t.codedH = int(binary.BigEndian.Uint16(entry[32:])), int(binary.BigEndian.Uint16(entry[34:]))
		stts := first(stbl["stts"])
		if len(stts) < 8 {
			return nil, false
		}
		n := int(binary.BigEndian.Uint32(stts[4:]))
		if len(stts) < 8+8*n {
			return nil, false
		}
		for i := range n {
			t.samples += int64(binary.BigEndian.Uint32(stts[8+8*i:]))
		}
	}
	return t, true
}

// hasShiftingEdit reports whether an edit list does more than ffmpeg's
// usual single edit from the start, or an initial delay.
func hasShiftingEdit(edts []byte) bool {
	elst := first(children(edts)["elst"])
	if len(elst) < 8 {
		return true
	}
	return binary.BigEndian.Uint32(elst[4:]) > 2
}
