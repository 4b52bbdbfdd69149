package kinds

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"strings"
	"unicode/utf8"

	"github.com/spoolrun/spool"
)

// subtitlesHandler runs the subtitles kind: it takes the transcript of
// the speech step before it in a workflow, or of a speech File given as
// its input, else transcribes the input itself as the speech kind does,
// and writes it as WebVTT or SubRip (option format) following the usual
// subtitle conventions: at most two lines of 42 characters a cue, cues of
// 1 to 7 seconds that do not overlap, broken at punctuation where one is
// near. The output is the subtitles File itself: object track, kind
// subtitles, with its language and format.
type subtitlesHandler struct{ transcribing }

func newSubtitles(enc *encoders, t Transcriber) *subtitlesHandler {
	return &subtitlesHandler{transcribing{handlerBase{enc: enc}, t}}
}

// Subtitle conventions.
const (
	cueLineChars = 42  // characters a line
	cueLines     = 2   // lines a cue
	cueMin       = 1.0 // seconds a cue shows, at least
	cueMax       = 7.0 // seconds a cue shows, at most
)

func (h *subtitlesHandler) Handle(ctx context.Context, job *spool.Job) error {
	format, _ := job.String("format")
	if format == "" {
		format = "vtt"
	}
	if format != "vtt" && format != "srt" {
		return spool.Permanent(fmt.Errorf("unknown subtitles format %q", format))
	}
	tr, err := jobTranscript(ctx, job, h.speech)
	if err != nil {
		return err
	}
	cues := makeCues(tr.Segments)
	var body []byte
	meta := &spool.File{Object: "track", Kind: "subtitles", Format: format, Filename: outputName(job, format),
		Duration: roundMS(tr.Duration)}
	if format == "vtt" {
		body, meta.Type = renderVTT(cues), "text/vtt"
	} else {
		body, meta.Type = renderSRT(cues), "application/x-subrip"
	}
	if lang, _ := job.String("language"); lang != "" {
		meta.Language = lang
	} else {
		meta.Language = tr.Language
	}
	f, err := job.CreateFile(ctx, bytes.NewReader(body), meta)
	if err != nil {
		return err
	}
	// The probe must not have made the track anything else.
	f.Object, f.Kind, f.Format, f.Language, f.Type = meta.Object, meta.Kind, meta.Format, meta.Language, meta.Type
	return job.SetOutput(f)
}

// cue is one subtitle: its time and its lines.
type cue struct {
	start, end float64
	words      []timedWord
}

type timedWord struct {
	text       string
	start, end float64
}

func (c *cue) text() string {
	parts := make([]string, len(c.words))
	for i, w := range c.words {
		parts[i] = w.text
	}
	return strings.Join(parts, " ")
}

// words spreads each segment's words over its time, in proportion to
// their length: the transcript times segments, not words.
func words(segs []Segment) []timedWord {
	var out []timedWord
	for _, s := range segs {
		ws := strings.Fields(s.Text)
		total := 0
		for _, w := range ws {
			total += utf8.RuneCountInString(w) + 1
		}
		at, dur := s.Start, max(s.End-s.Start, 0)
		for _, w := range ws {
			d := dur * float64(utf8.RuneCountInString(w)+1) / float64(total)
			out = append(out, timedWord{w, at, at + d})
			at += d
		}
		if n := len(out); n > 0 && len(ws) > 0 {
			out[n-1].end = s.End // no rounding drift past the segment
		}
	}
	return out
}

// fitsLines reports whether words fit in cueLines lines of cueLineChars.
func fitsLines(ws []timedWord) bool {
	_, ok := splitLines(ws)
	return ok
}

// splitLines breaks a cue's words into lines: one if it fits, else two,
// split where the longer line is shortest, preferring a break after
// punctuation when both lines still fit. ok is false when no split fits.
func splitLines(ws []timedWord) (lines []string, ok bool) {
	all := joinWords(ws)
	if utf8.RuneCountInString(all) <= cueLineChars {
		return []string{all}, true
	}
	best, bestLen, bestPunct := -1, math.MaxInt, false
	for i := 1; i < len(ws); i++ {
		a, b := utf8.RuneCountInString(joinWords(ws[:i])), utf8.RuneCountInString(joinWords(ws[i:]))
		longer := max(a, b)
		if longer > cueLineChars {
			continue
		}
		punct := endsClause(ws[i-1].text)
		if best < 0 || punct && !bestPunct || punct == bestPunct && longer < bestLen {
			best, bestLen, bestPunct = i, longer, punct
		}
	}
	if best < 0 {
		if len(ws) == 1 {
			return []string{all}, true // one word longer than a line: as it is
		}
		return nil, false
	}
	return []string{joinWords(ws[:best]), joinWords(ws[best:])}, true
}

func joinWords(ws []timedWord) string {
	c := cue{words: ws}
	return c.text()
}

// endsSentence and endsClause tell the punctuation a cue may end at.
func endsSentence(w string) bool { return strings.ContainsAny(lastRune(w), ".?!…") }
func endsClause(w string) bool   { return strings.ContainsAny(lastRune(w), ".?!…,;:") }

func lastRune(w string) string {
	w = strings.TrimRight(w, `"')]»”’`)
	r, _ := utf8.DecodeLastRuneInString(w)
	return string(r)
}

// makeCues groups a timeline's words into cues that follow the
// conventions: a cue ends at the end of a sentence once it has shown a
// second, and before a word that would not fit its lines or its 7
// seconds, back at the last clause's end when that keeps it half full.
// Cues shorter than a second are lengthened into the gap after them, else
// merged with a neighbour, else given time from the next cue.
func makeCues(segs []Segment) []*cue {
	var cues []*cue
	var cur []timedWord
	emit := func(ws []timedWord) {
		if len(ws) > 0 {
			cues = append(cues, &cue{start: ws[0].start, end: ws[len(ws)-1].end, words: append([]timedWord(nil), ws...)})
		}
	}
	for _, w := range words(segs) {
		next := append(cur[:len(cur):len(cur)], w)
		if len(cur) > 0 && (!fitsLines(next) || w.end-cur[0].start > cueMax) {
			cut := len(cur)
			for k := len(cur) - 1; k > 0; k-- {
				if endsClause(cur[k-1].text) && utf8.RuneCountInString(joinWords(cur[:k])) >= cueLineChars*cueLines/3 {
					cut = k
					break
				}
			}
			emit(cur[:cut])
			cur = append(append([]timedWord(nil), cur[cut:]...), w)
			continue
		}
		cur = next
		if endsSentence(w.text) && w.end-cur[0].start >= cueMin {
			emit(cur)
			cur = nil
		}
	}
	emit(cur)
	return fixTimes(cues)
}

// fixTimes makes every cue last 1 to 7 seconds without overlapping the
// next, as far as the speech allows.
func fixTimes(cues []*cue) []*cue {
	for i := 0; i < len(cues); i++ {
		c := cues[i]
		c.end = min(c.end, c.start+cueMax)
		if c.end-c.start >= cueMin {
			continue
		}
		nextStart := math.Inf(1)
		if i+1 < len(cues) {
			nextStart = cues[i+1].start
		}
		c.end = max(c.end, min(c.start+cueMin, nextStart))
		if c.end-c.start >= cueMin-1e-9 {
			continue
		}
		switch {
		case i+1 < len(cues) && canMerge(c, cues[i+1]):
			n := cues[i+1]
			c.words, c.end = append(c.words, n.words...), n.end
			cues = append(cues[:i+1], cues[i+2:]...)
			i-- // check the merged cue again
		case i > 0 && canMerge(cues[i-1], c):
			p := cues[i-1]
			p.words, p.end = append(p.words, c.words...), max(p.end, c.end)
			cues = append(cues[:i], cues[i+1:]...)
			i -= 2 // check the previous cue again
			if i < -1 {
				i = -1
			}
		default:
			// Take the time from the next cue's start, which then shows a
			// little later (and is checked in turn).
			c.end = c.start + cueMin
			n := cues[i+1]
			n.start = c.end
			n.end = max(n.end, n.start)
		}
	}
	for _, c := range cues {
		c.start, c.end = roundMS(c.start), roundMS(c.end)
	}
	return cues
}

// canMerge reports whether b may join a in one cue.
func canMerge(a, b *cue) bool {
	ws := append(append([]timedWord(nil), a.words...), b.words...)
	return fitsLines(ws) && b.end-a.start <= cueMax
}

// renderVTT writes cues as WebVTT.
func renderVTT(cues []*cue) []byte {
	var b bytes.Buffer
	b.WriteString("WEBVTT\n")
	esc := strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")
	for _, c := range cues {
		lines, _ := splitLines(c.words)
		fmt.Fprintf(&b, "\n%s --> %s\n", cueTime(c.start, '.'), cueTime(c.end, '.'))
		for _, l := range lines {
			b.WriteString(esc.Replace(l) + "\n")
		}
	}
	return b.Bytes()
}

// renderSRT writes cues as SubRip.
func renderSRT(cues []*cue) []byte {
	var b bytes.Buffer
	for i, c := range cues {
		lines, _ := splitLines(c.words)
		if i > 0 {
			b.WriteString("\n")
		}
		fmt.Fprintf(&b, "%d\n%s --> %s\n", i+1, cueTime(c.start, ','), cueTime(c.end, ','))
		for _, l := range lines {
			b.WriteString(strings.ReplaceAll(l, "-->", "->") + "\n")
		}
	}
	return b.Bytes()
}

// cueTime formats seconds as HH:MM:SS.mmm (sep ',' for SubRip).
func cueTime(s float64, sep byte) string {
	ms := int64(math.Round(max(s, 0) * 1000))
	return fmt.Sprintf("%02d:%02d:%02d%c%03d", ms/3600000, ms/60000%60, ms/1000%60, sep, ms%1000)
}
