// Package imagemeta reads what the headers of JPEG, PNG, GIF, WebP and
// AVIF files say about their pictures without decoding any pixel: the
// size, the EXIF orientation, whether there is transparency, and how many
// frames.
// It trusts nothing it reads: every length is checked against what is
// left, and a file it cannot follow is an error, never a panic.
package imagemeta

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Info is what Read found.
type Info struct {
	Format string // jpeg, png, gif, webp or avif
	// Width and Height are the stored size, before Orientation turns it.
	Width, Height int
	// Orientation is the EXIF orientation, 1 to 8; 1 when the file has none.
	Orientation int
	// Alpha reports an alpha channel or a transparent colour.
	Alpha bool
	// Frames is 1 for a still image, the number of frames of an animation.
	Frames int
}

// ErrUnknownFormat is returned by Read for a file that is none of the
// formats it reads.
var ErrUnknownFormat = errors.New("imagemeta: not a JPEG, PNG, GIF, WebP or AVIF file")

// errCorrupt is returned for a file whose headers do not add up.
var errCorrupt = errors.New("imagemeta: corrupt header")

// Read reads the headers of the image in r. It reads a JPEG up to its
// first scan, a PNG up to its pixel data (after an APNG's frame count), a
// WebP chunk by chunk skipping the bitstreams, and a GIF to its end,
// skipping the pixel data, since only the end tells how many frames there
// are.
func Read(r io.Reader) (Info, error) {
	br := bufio.NewReaderSize(r, 4096)
	head, err := br.Peek(12)
	if err != nil && len(head) < 4 {
		return Info{}, ErrUnknownFormat
	}
	var info Info
	switch {
	case bytes.HasPrefix(head, []byte{0xff, 0xd8}):
		info, err = readJPEG(br)
	case bytes.HasPrefix(head, []byte("\x89PNG\r\n\x1a\n")):
		info, err = readPNG(br)
	case bytes.HasPrefix(head, []byte("GIF87a")) || bytes.HasPrefix(head, []byte("GIF89a")):
		info, err = readGIF(br)
	case len(head) == 12 && string(head[:4]) == "RIFF" && string(head[8:12]) == "WEBP":
		info, err = readWebP(br)
	case len(head) == 12 && string(head[4:8]) == "ftyp" && (string(head[8:12]) == "avif" || string(head[8:12]) == "avis"):
		info, err = readAVIF(br)
	default:
		return Info{}, ErrUnknownFormat
	}
	if err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			err = fmt.Errorf("%w: file ends early", errCorrupt)
		}
		return Info{}, err
	}
	if info.Width <= 0 || info.Height <= 0 {
		return Info{}, fmt.Errorf("%w: no picture size", errCorrupt)
	}
	if info.Orientation < 1 || info.Orientation > 8 {
		info.Orientation = 1
	}
	if info.Frames < 1 {
		info.Frames = 1
	}
	return info, nil
}

// readJPEG walks the markers up to the first scan: APP1 may hold EXIF,
// a SOFn marker holds the size.
func readJPEG(br *bufio.Reader) (Info, error) {
	info := Info{Format: "jpeg", Orientation: 1}
	if _, err := br.Discard(2); err != nil {
		return info, err
	}
	for {
		b, err := br.ReadByte()
		if err != nil {
			return info, err
		}
		if b != 0xff {
			return info, fmt.Errorf("%w: bad JPEG marker", errCorrupt)
		}
		m, err := br.ReadByte()
		for err == nil && m == 0xff { // fill bytes
			m, err = br.ReadByte()
		}
		if err != nil {
			return info, err
		}
		switch {
		case m == 0xd8 || m >= 0xd0 && m <= 0xd7 || m == 0x01:
			continue // no length
		case m == 0xd9 || m == 0xda:
			// End of image, or the first scan: everything after is pixels.
			if info.Width == 0 {
				return info, fmt.Errorf("%w: JPEG without a frame header", errCorrupt)
			}
			return info, nil
		}
		var l [2]byte
		if _, err := io.ReadFull(br, l[:]); err != nil {
			return info, err
		}
		n := int(binary.BigEndian.Uint16(l[:])) - 2
		if n < 0 {
			return info, fmt.Errorf("%w: bad JPEG segment length", errCorrupt)
		}
		switch {
		case m == 0xe1 && info.Orientation == 1:
			seg := make([]byte, n)
			if _, err := io.ReadFull(br, seg); err != nil {
				return info, err
			}
			if exif, ok := bytes.CutPrefix(seg, []byte("Exif\x00\x00")); ok {
				info.Orientation = Orientation(exif)
			}
		case m >= 0xc0 && m <= 0xcf && m != 0xc4 && m != 0xc8 && m != 0xcc:
			// SOFn: precision, height, width, components.
			if n < 6 {
				return info, fmt.Errorf("%w: short JPEG frame header", errCorrupt)
			}
			var sof [6]byte
			if _, err := io.ReadFull(br, sof[:]); err != nil {
				return info, err
			}
			info.Height = int(binary.BigEndian.Uint16(sof[1:3]))
			info.Width = int(binary.BigEndian.Uint16(sof[3:5]))
			if _, err := br.Discard(n - 6); err != nil {
				return info, err
			}
		default:
			if _, err := br.Discard(n); err != nil {
				return info, err
			}
		}
	}
}

// Orientation returns the orientation tag (0x0112) of IFD0 of EXIF data
// (a TIFF header and its IFDs, as after the "Exif\0\0" of a JPEG's APP1
// segment, in a PNG's eXIf chunk or a WebP's EXIF chunk), or 1 when the
// data has none or cannot be read.
func Orientation(exif []byte) int {
	if len(exif) < 8 {
		return 1
	}
	var bo binary.ByteOrder
	switch string(exif[:4]) {
	case "II*\x00":
		bo = binary.LittleEndian
	case "MM\x00*":
		bo = binary.BigEndian
	default:
		return 1
	}
	off := uint64(bo.Uint32(exif[4:8]))
	if off+2 > uint64(len(exif)) {
		return 1
	}
	count := uint64(bo.Uint16(exif[off:]))
	entries := exif[off+2:]
	for i := uint64(0); i < count && 12*(i+1) <= uint64(len(entries)); i++ {
		e := entries[12*i : 12*(i+1)]
		if bo.Uint16(e[0:2]) != 0x0112 {
			continue
		}
		// A SHORT (type 3) with count 1 sits in the first two bytes of
		// the value field; some writers use a LONG.
		var v uint32
		switch typ := bo.Uint16(e[2:4]); typ {
		case 3:
			v = uint32(bo.Uint16(e[8:10]))
		case 4:
			v = bo.Uint32(e[8:12])
		default:
			return 1
		}
		if v < 1 || v > 8 {
			return 1
		}
		return int(v)
	}
	return 1
}

// maxMetaChunk bounds the metadata chunks read into memory (EXIF); larger
// ones are skipped.
const maxMetaChunk = 1 << 20

// readPNG reads IHDR, then chunks up to the first IDAT: tRNS says a
// colour is transparent, acTL that the file is an APNG, eXIf the
// orientation.
func readPNG(br *bufio.Reader) (Info, error) {
	info := Info{Format: "png", Orientation: 1, Frames: 1}
	if _, err := br.Discard(8); err != nil {
		return info, err
	}
	for first := true; ; first = false {
		var h [8]byte
		if _, err := io.ReadFull(br, h[:]); err != nil {
			return info, err
		}
		n := int64(binary.BigEndian.Uint32(h[:4]))
		typ := string(h[4:8])
		if n > 1<<31-1 || first != (typ == "IHDR") {
			return info, fmt.Errorf("%w: bad PNG chunk", errCorrupt)
		}
		switch typ {
		case "IHDR":
			if n < 13 {
				return info, fmt.Errorf("%w: short PNG header", errCorrupt)
			}
			var d [13]byte
			if _, err := io.ReadFull(br, d[:]); err != nil {
				return info, err
			}
			info.Width = int(binary.BigEndian.Uint32(d[0:4]))
			info.Height = int(binary.BigEndian.Uint32(d[4:8]))
			ct := d[9]
			info.Alpha = ct == 4 || ct == 6 // grey or truecolour with alpha
			n -= 13
		case "tRNS":
			info.Alpha = true
		case "acTL":
			if n >= 4 {
				var d [4]byte
				if _, err := io.ReadFull(br, d[:]); err != nil {
					return info, err
				}
				if f := binary.BigEndian.Uint32(d[:]); f > 0 && f < 1<<31 {
					info.Frames = int(f)
				}
				n -= 4
			}
		case "eXIf":
			if n <= maxMetaChunk {
				d := make([]byte, n)
				if _, err := io.ReadFull(br, d); err != nil {
					return info, err
				}
				info.Orientation = Orientation(d)
				n = 0
			}
		case "IDAT", "IEND":
			return info, nil
		}
		if err := discard(br, n+4); err != nil { // the rest, and the CRC
			return info, err
		}
	}
}

// readGIF walks the blocks of a GIF to count its frames, skipping colour
// tables and pixel data; a graphic control extension with its transparent
// flag set means transparency.
func readGIF(br *bufio.Reader) (Info, error) {
	info := Info{Format: "gif", Orientation: 1}
	var h [13]byte
	if _, err := io.ReadFull(br, h[:]); err != nil {
		return info, err
	}
	info.Width = int(binary.LittleEndian.Uint16(h[6:8]))
	info.Height = int(binary.LittleEndian.Uint16(h[8:10]))
	if h[10]&0x80 != 0 {
		if err := discard(br, 3<<(int(h[10]&7)+1)); err != nil {
			return info, err
		}
	}
	for {
		b, err := br.ReadByte()
		if err != nil {
			return info, err
		}
		switch b {
		case 0x21: // extension
			label, err := br.ReadByte()
			if err != nil {
				return info, err
			}
			if label == 0xf9 {
				var gce [6]byte // size 4, flags, delay, transparent index, terminator
				if _, err := io.ReadFull(br, gce[:]); err != nil {
					return info, err
				}
				if gce[0] != 4 || gce[5] != 0 {
					return info, fmt.Errorf("%w: bad GIF graphic control extension", errCorrupt)
				}
				if gce[1]&1 != 0 {
					info.Alpha = true
				}
				continue
			}
			if err := skipSubBlocks(br); err != nil {
				return info, err
			}
		case 0x2c: // image descriptor
			var d [9]byte
			if _, err := io.ReadFull(br, d[:]); err != nil {
				return info, err
			}
			if d[8]&0x80 != 0 {
				if err := discard(br, 3<<(int(d[8]&7)+1)); err != nil {
					return info, err
				}
			}
			if _, err := br.ReadByte(); err != nil { // LZW minimum code size
				return info, err
			}
			if err := skipSubBlocks(br); err != nil {
				return info, err
			}
			info.Frames++
		case 0x3b: // trailer
			return info, nil
		default:
			if info.Frames > 0 {
				return info, nil // junk after the frames: what came before stands
			}
			return info, fmt.Errorf("%w: bad GIF block", errCorrupt)
		}
	}
}

func skipSubBlocks(br *bufio.Reader) error {
	for {
		n, err := br.ReadByte()
		if err != nil {
			return err
		}
		if n == 0 {
			return nil
		}
		if _, err := br.Discard(int(n)); err != nil {
			return err
		}
	}
}

// readWebP walks the chunks of a WebP file: the size is in VP8, VP8L or
// VP8X; VP8X has the alpha and animation flags, and the frames are ANMF
// chunks.
func readWebP(br *bufio.Reader) (Info, error) {
	info := Info{Format: "webp", Orientation: 1}
	if _, err := br.Discard(12); err != nil {
		return info, err
	}
	anmf := 0
	for {
		var h [8]byte
		if _, err := io.ReadFull(br, h[:]); err != nil {
			if errors.Is(err, io.EOF) && info.Width > 0 {
				break
			}
			return info, err
		}
		n := int64(binary.LittleEndian.Uint32(h[4:8]))
		pad := n & 1
		switch string(h[:4]) {
		case "VP8X":
			if n < 10 {
				return info, fmt.Errorf("%w: short WebP VP8X chunk", errCorrupt)
			}
			var d [10]byte
			if _, err := io.ReadFull(br, d[:]); err != nil {
				return info, err
			}
			info.Alpha = d[0]&0x10 != 0
			info.Width = int(uint32(d[4])|uint32(d[5])<<8|uint32(d[6])<<16) + 1
			info.Height = int(uint32(d[7])|uint32(d[8])<<8|uint32(d[9])<<16) + 1
			n -= 10
		case "VP8 ":
			var d [10]byte
			if n < 10 {
				return info, fmt.Errorf("%w: short WebP VP8 chunk", errCorrupt)
			}
			if _, err := io.ReadFull(br, d[:]); err != nil {
				return info, err
			}
			if d[3] != 0x9d || d[4] != 0x01 || d[5] != 0x2a {
				return info, fmt.Errorf("%w: bad WebP VP8 frame", errCorrupt)
			}
			if info.Width == 0 {
				info.Width = int(binary.LittleEndian.Uint16(d[6:8]) & 0x3fff)
				info.Height = int(binary.LittleEndian.Uint16(d[8:10]) & 0x3fff)
			}
			n -= 10
		case "VP8L":
			var d [5]byte
			if n < 5 {
				return info, fmt.Errorf("%w: short WebP VP8L chunk", errCorrupt)
			}
			if _, err := io.ReadFull(br, d[:]); err != nil {
				return info, err
			}
			if d[0] != 0x2f {
				return info, fmt.Errorf("%w: bad WebP VP8L signature", errCorrupt)
			}
			bits := binary.LittleEndian.Uint32(d[1:5])
			if info.Width == 0 {
				info.Width = int(bits&0x3fff) + 1
				info.Height = int(bits>>14&0x3fff) + 1
				info.Alpha = bits>>28&1 != 0
			}
			n -= 5
		case "ANMF":
			anmf++
		case "EXIF":
			if n <= maxMetaChunk {
				d := make([]byte, n)
				if _, err := io.ReadFull(br, d); err != nil {
					return info, err
				}
				// Some writers keep JPEG's "Exif\0\0" prefix.
				info.Orientation = Orientation(bytes.TrimPrefix(d, []byte("Exif\x00\x00")))
				n = 0
			}
		}
		if err := discard(br, n+pad); err != nil {
			if errors.Is(err, io.EOF) && info.Width > 0 {
				break // a truncated trailing chunk: the header is known
			}
			return info, err
		}
	}
	info.Frames = max(anmf, 1)
	return info, nil
}

// discard skips n bytes, which may be more than an int on 32-bit systems.
func discard(br *bufio.Reader, n int64) error {
	if n < 0 {
		return errCorrupt
	}
	_, err := io.CopyN(io.Discard, br, n)
	return err
}

// maxAVIFMeta bounds the meta box of an AVIF file read into memory; the
// pixel data is in mdat, outside it.
const maxAVIFMeta = 1 << 20

// readAVIF finds the meta box among the top-level boxes and reads its
// item properties: the first image spatial extents (ispe) is the primary
// picture's size (encoders write the primary item's first), and an
// auxiliary alpha item means transparency. An image sequence (avis) is
// animated; its frame count is in the track, which this does not read.
func readAVIF(br *bufio.Reader) (Info, error) {
	info := Info{Format: "avif", Orientation: 1}
	for {
		typ, n, err := nextBox(br)
		if err != nil {
			return info, err
		}
		if typ == "ftyp" {
			b := make([]byte, min(n, 4096))
			if _, err := io.ReadFull(br, b); err != nil {
				return info, err
			}
			if len(b) >= 4 && string(b[:4]) == "avis" {
				info.Frames = 2 // at least: a sequence
			}
			if err := discard(br, n-int64(len(b))); err != nil {
				return info, err
			}
			continue
		}
		if typ != "meta" {
			if err := discard(br, n); err != nil {
				return info, err
			}
			continue
		}
		if n > maxAVIFMeta || n < 4 {
			return info, fmt.Errorf("%w: AVIF meta box of %d bytes", errCorrupt, n)
		}
		meta := make([]byte, n)
		if _, err := io.ReadFull(br, meta); err != nil {
			return info, err
		}
		readAVIFProps(meta[4:], &info) // after the full box's version and flags
		return info, nil
	}
}

// nextBox reads an ISO BMFF box header and returns the box's type and the
// length of its body. A size of 0 (to the end of the file) is refused,
// since the meta box this looks for is never last.
func nextBox(br *bufio.Reader) (typ string, n int64, err error) {
	var h [8]byte
	if _, err := io.ReadFull(br, h[:]); err != nil {
		return "", 0, err
	}
	size := int64(binary.BigEndian.Uint32(h[:4]))
	hdr := int64(8)
	if size == 1 {
		var l [8]byte
		if _, err := io.ReadFull(br, l[:]); err != nil {
			return "", 0, err
		}
		size, hdr = int64(binary.BigEndian.Uint64(l[:])), 16
	}
	if size < hdr || size-hdr > 1<<40 {
		return "", 0, fmt.Errorf("%w: bad AVIF box size", errCorrupt)
	}
	return string(h[4:8]), size - hdr, nil
}

// walkBoxes calls fn for each box in b with its body.
func walkBoxes(b []byte, fn func(typ string, body []byte)) {
	for len(b) >= 8 {
		size := uint64(binary.BigEndian.Uint32(b[:4]))
		typ := string(b[4:8])
		hdr := uint64(8)
		if size == 1 && len(b) >= 16 {
			size, hdr = binary.BigEndian.Uint64(b[8:16]), 16
		}
		if size == 0 {
			size = uint64(len(b))
		}
		if size < hdr || size > uint64(len(b)) {
			return
		}
		if fn != nil {
			fn(typ, b[hdr:size])
		}
		b = b[size:]
	}
}

// readAVIFProps reads the item properties in a meta box's children.
func readAVIFProps(meta []byte, info *Info) {
	walkBoxes(meta, func(typ string, b []byte) {
		if typ != "iprp" {
			return
		}
		walkBoxes(b, func(typ string, b []byte) {
			if typ != "ipco" {
				return
			}
			walkBoxes(b, func(typ string, b []byte) {
				switch {
				case typ == "ispe" && len(b) >= 12 && info.Width == 0:
					info.Width = int(binary.BigEndian.Uint32(b[4:8]) & 0x7fffffff)
					info.Height = int(binary.BigEndian.Uint32(b[8:12]) & 0x7fffffff)
				case typ == "auxC" && bytes.Contains(b, []byte("auxiliary:alpha")):
					info.Alpha = true
				}
			})
		})
	})
}
