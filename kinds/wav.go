package kinds

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"

	"github.com/spoolrun/spool"
)

// wavFile is a 16-bit PCM WAV file, as ffmpeg writes the speech kind's
// audio: where its samples are, and how they are laid out.
type wavFile struct {
	f          *os.File
	rate       int   // samples per second
	channels   int   // 1 for the speech kind's audio
	dataOffset int64 // of the samples in the file
	dataLen    int64 // bytes of samples
}

// openWAV reads the header of a 16-bit PCM WAV file.
func openWAV(path string) (*wavFile, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read audio: %w", err)
	}
	w, err := readWAVHeader(f)
	if err != nil {
		f.Close()
		return nil, spool.Permanent(fmt.Errorf("read audio: %w", err))
	}
	w.f = f
	return w, nil
}

func readWAVHeader(f *os.File) (*wavFile, error) {
	var riff [12]byte
	if _, err := io.ReadFull(f, riff[:]); err != nil || string(riff[0:4]) != "RIFF" || string(riff[8:12]) != "WAVE" {
		return nil, errors.New("not a WAV file")
	}
	w := &wavFile{}
	pos := int64(12)
	for {
		var hdr [8]byte
		if _, err := f.ReadAt(hdr[:], pos); err != nil {
			return nil, errors.New("WAV file without data")
		}
		id, size := string(hdr[0:4]), int64(binary.LittleEndian.Uint32(hdr[4:8]))
		pos += 8
		switch id {
		case "fmt ":
			var fm [16]byte
			if _, err := f.ReadAt(fm[:], pos); err != nil {
				return nil, errors.New("WAV file with a short fmt chunk")
			}
			format := binary.LittleEndian.Uint16(fm[0:2])
			w.channels = int(binary.LittleEndian.Uint16(fm[2:4]))
			w.rate = int(binary.LittleEndian.Uint32(fm[4:8]))
			bits := binary.LittleEndian.Uint16(fm[14:16])
			if (format != 1 && format != 0xFFFE) || bits != 16 || w.channels < 1 || w.rate < 1 {
				return nil, fmt.Errorf("WAV file not 16-bit PCM (format %d, %d bits)", format, bits)
			}
		case "data":
			if w.rate == 0 {
				return nil, errors.New("WAV file with data before its format")
			}
			w.dataOffset, w.dataLen = pos, size
			if st, err := f.Stat(); err == nil && (size == 0 || size == 0xFFFFFFFF || pos+size > st.Size()) {
				w.dataLen = st.Size() - pos // streamed, or over 4 GB
			}
			w.dataLen -= w.dataLen % int64(w.blockAlign())
			return w, nil
		}
		pos += size + size%2
	}
}

func (w *wavFile) Close() error { return w.f.Close() }

func (w *wavFile) blockAlign() int { return 2 * w.channels }

func (w *wavFile) bytesPerSecond() float64 { return float64(w.rate * w.blockAlign()) }

// duration is the audio's length in seconds.
func (w *wavFile) duration() float64 { return float64(w.dataLen) / w.bytesPerSecond() }

// span is a stretch of audio, in seconds.
type span struct{ start, end float64 }

// wavHeaderSize is the size of the header writeSpan writes.
const wavHeaderSize = 44

// plan returns the chunks to transcribe separately so that each file is
// at most limit bytes (no limit when limit <= 0): the whole audio when it
// fits, else chunks cut in the middle of silences where one falls in the
// second half of a chunk, else at the limit.
func (w *wavFile) plan(limit int64) ([]span, error) {
	total := w.duration()
	if limit <= 0 || wavHeaderSize+w.dataLen <= limit {
		return []span{{0, total}}, nil
	}
	maxLen := math.Floor(float64(limit-wavHeaderSize)/w.bytesPerSecond()*100) / 100
	if maxLen < 1 {
		return nil, spool.Permanent(fmt.Errorf("the speech provider's upload limit of %d bytes holds less than a second of audio", limit))
	}
	silences, err := w.silences()
	if err != nil {
		return nil, err
	}
	return planSpans(total, maxLen, silences), nil
}

// planSpans cuts [0, total] into spans of at most maxLen seconds, each cut
// in the middle of the latest silence in the second half of its span.
func planSpans(total, maxLen float64, silences []span) []span {
	var spans []span
	start := 0.0
	for total-start > maxLen {
		limit := start + maxLen
		cut := limit
		for _, s := range silences {
			mid := (s.start + s.end) / 2
			if mid > start+maxLen/2 && mid <= limit {
				cut = mid
			}
		}
		cut = math.Round(cut*1000) / 1000
		spans = append(spans, span{start, cut})
		start = cut
	}
	return append(spans, span{start, total})
}

// Silence as ffmpeg's silencedetect finds it by default: below -35 dBFS
// for at least 0.3 s. It is found here, in Go, from the samples already
// extracted, rather than by a second ffmpeg pass whose filter would have
// to name a file to write its findings to.
const (
	silenceThreshold = 0.0178 // -35 dBFS
	silenceMin       = 0.3    // seconds
	silenceWindow    = 0.01   // seconds of samples judged together
)

// silences returns the stretches of silence in the audio.
func (w *wavFile) silences() ([]span, error) {
	r := bufio.NewReaderSize(io.NewSectionReader(w.f, w.dataOffset, w.dataLen), 64<<10)
	window := max(int(float64(w.rate)*silenceWindow), 1) * w.channels
	buf := make([]byte, 2*window)
	var out []span
	silentFrom := -1.0
	for i := 0; ; i++ {
		n, err := io.ReadFull(r, buf)
		if n > 0 {
			var sum float64
			for k := 0; k+1 < n; k += 2 {
				v := float64(int16(binary.LittleEndian.Uint16(buf[k:]))) / 32768
				sum += v * v
			}
			rms := math.Sqrt(sum / float64(n/2))
			at := float64(i) * float64(window/w.channels) / float64(w.rate)
			switch {
			case rms < silenceThreshold && silentFrom < 0:
				silentFrom = at
			case rms >= silenceThreshold && silentFrom >= 0:
				if at-silentFrom >= silenceMin {
					out = append(out, span{silentFrom, at})
				}
				silentFrom = -1
			}
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("read audio: %w", err)
		}
	}
	if end := w.duration(); silentFrom >= 0 && end-silentFrom >= silenceMin {
		out = append(out, span{silentFrom, end})
	}
	return out, nil
}

// writeSpan writes the audio of sp as a WAV file at path.
func (w *wavFile) writeSpan(path string, sp span) error {
	align := int64(w.blockAlign())
	from := int64(math.Round(sp.start*float64(w.rate))) * align
	to := min(int64(math.Round(sp.end*float64(w.rate)))*align, w.dataLen)
	if to < from {
		to = from
	}
	out, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("write audio chunk: %w", err)
	}
	bw := bufio.NewWriter(out)
	bw.Write(wavHeader(w.rate, w.channels, to-from))
	_, err = io.Copy(bw, io.NewSectionReader(w.f, w.dataOffset+from, to-from))
	if err == nil {
		err = bw.Flush()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write audio chunk: %w", err)
	}
	return nil
}

// wavHeader returns the 44-byte header of 16-bit PCM audio of n bytes.
func wavHeader(rate, channels int, n int64) []byte {
	h := make([]byte, wavHeaderSize)
	copy(h[0:], "RIFF")
	binary.LittleEndian.PutUint32(h[4:], uint32(36+n))
	copy(h[8:], "WAVEfmt ")
	binary.LittleEndian.PutUint32(h[16:], 16)
	binary.LittleEndian.PutUint16(h[20:], 1)
	binary.LittleEndian.PutUint16(h[22:], uint16(channels))
	binary.LittleEndian.PutUint32(h[24:], uint32(rate))
	binary.LittleEndian.PutUint32(h[28:], uint32(rate*channels*2))
	binary.LittleEndian.PutUint16(h[32:], uint16(channels*2))
	binary.LittleEndian.PutUint16(h[34:], 16)
	copy(h[36:], "data")
	binary.LittleEndian.PutUint32(h[40:], uint32(n))
	return h
}
