package kinds

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spoolrun/spool"
)

// PocketSphinx is a local, offline Transcriber: CMU PocketSphinx with its
// US English model, as Debian's pocketsphinx and pocketsphinx-en-us
// packages install them. It needs no account and no network, and is the
// speech kind's default when no other provider is configured.
//
// Its accuracy is low: on clear speech it gets some words right and many
// wrong, and it knows English only. It is a working default and a way to
// test the speech path end to end, not a rival to Whisper; for useful
// transcripts configure an OpenAI-compatible provider (OpenAI, or a local
// whisper.cpp server). Each utterance it finds (speech between pauses)
// is a segment, timed by its words, with their mean posterior as its
// confidence.
//
// It runs pocketsphinx_continuous -time yes (pocketsphinx 5prealpha, as in
// Debian 12), or, without it, the pocketsphinx program of PocketSphinx 5
// (pocketsphinx single, which prints JSON), from PATH, with an argument
// list and in its own process group, killed whole when the task ends.
type PocketSphinx struct {
	// Program is the path of pocketsphinx_continuous or pocketsphinx.
	// Defaults to pocketsphinx_continuous in PATH, else pocketsphinx.
	Program string
	// ModelDir holds the en-us acoustic model directory, en-us.lm.bin and
	// cmudict-en-us.dict. Defaults to /usr/share/pocketsphinx/model/en-us,
	// where pocketsphinx-en-us installs them.
	ModelDir string
}

const defaultSphinxModelDir = "/usr/share/pocketsphinx/model/en-us"

// sphinxSetup is what a run needs: the program, whether it is the 5.x
// one, and the model's files.
type sphinxSetup struct {
	prog           string
	v5             bool
	hmm, lm, dict  string
	missingProgram bool
}

func (p *PocketSphinx) setup() (*sphinxSetup, error) {
	s := &sphinxSetup{}
	switch {
	case p.Program != "":
		s.prog = p.Program
		s.v5 = filepath.Base(p.Program) == "pocketsphinx"
	default:
		if prog, err := exec.LookPath("pocketsphinx_continuous"); err == nil {
			s.prog = prog
		} else if prog, err := exec.LookPath("pocketsphinx"); err == nil {
			s.prog, s.v5 = prog, true
		} else {
			s.missingProgram = true
			return s, errors.New("pocketsphinx not found in PATH: install pocketsphinx and pocketsphinx-en-us")
		}
	}
	dir := p.ModelDir
	if dir == "" {
		dir = defaultSphinxModelDir
	}
	s.hmm, s.lm, s.dict = filepath.Join(dir, "en-us"), filepath.Join(dir, "en-us.lm.bin"), filepath.Join(dir, "cmudict-en-us.dict")
	for _, f := range []string{s.hmm, s.lm, s.dict} {
		if _, err := os.Stat(f); err != nil {
			return s, fmt.Errorf("pocketsphinx's US English model not found (%s): install pocketsphinx-en-us", f)
		}
	}
	return s, nil
}

// Check says why PocketSphinx cannot run here: the program or its model
// missing.
func (p *PocketSphinx) Check(context.Context) error {
	_, err := p.setup()
	return err
}

// Transcribe transcribes the mono 16 kHz WAV file at path. A Language
// other than English fails (Permanent); Prompt is not used.
func (p *PocketSphinx) Transcribe(ctx context.Context, path string, opts *TranscribeOptions) (*Transcript, error) {
	if opts != nil && opts.Language != "" && !strings.HasPrefix(strings.ToLower(opts.Language), "en") {
		return nil, spool.Permanent(fmt.Errorf("pocketsphinx transcribes English only, not %q: configure another speech provider", opts.Language))
	}
	s, err := p.setup()
	if err != nil {
		return nil, spool.Permanent(err)
	}
	args := []string{"-hmm", s.hmm, "-lm", s.lm, "-dict", s.dict}
	if s.v5 {
		args = append(args, "single", path)
	} else {
		args = append(args, "-infile", path, "-time", "yes", "-logfn", os.DevNull)
	}
	cmd := exec.CommandContext(ctx, s.prog, args...)
	stderr := &tailBuffer{max: maxStderr}
	cmd.Stderr = stderr
	ownGroup(cmd)
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.Output()
	var exit *exec.ExitError
	switch {
	case ctx.Err() != nil:
		return nil, fmt.Errorf("run pocketsphinx: %w", context.Cause(ctx))
	case errors.As(err, &exit) && exit.Exited():
		return nil, spool.Permanent(fmt.Errorf("pocketsphinx: %s", lastLines(scrub(stderr.String(), []string{path}), 3)))
	case err != nil:
		return nil, fmt.Errorf("run pocketsphinx: %w", err)
	}
	var segs []Segment
	if s.v5 {
		segs, err = parseSphinxJSON(string(out))
	} else {
		segs = parseSphinxContinuous(string(out))
	}
	if err != nil {
		return nil, spool.Permanent(err)
	}
	tr := &Transcript{Language: "en", Segments: segs}
	var parts []string
	for _, sg := range segs {
		parts = append(parts, sg.Text)
	}
	tr.Text = strings.Join(parts, " ")
	return tr, nil
}

// sphinxWord is one word of PocketSphinx's answer, in seconds.
type sphinxWord struct {
	text       string
	start, end float64
	prob       float64
}

// utterance makes a segment of an utterance's words, leaving out the
// fillers (<s>, <sil>, [NOISE]) and the pronunciation numbers ("read(2)").
// ok is false when it has no word.
func utterance(words []sphinxWord) (Segment, bool) {
	var seg Segment
	var texts []string
	var prob float64
	for _, w := range words {
		t := w.text
		if t == "" || strings.HasPrefix(t, "<") || strings.HasPrefix(t, "[") || strings.HasPrefix(t, "+") {
			continue
		}
		if i := strings.IndexByte(t, '('); i > 0 {
			t = t[:i]
		}
		if len(texts) == 0 {
			seg.Start = w.start
		}
		seg.End = max(w.end, seg.Start)
		texts = append(texts, t)
		prob += w.prob
	}
	if len(texts) == 0 {
		return seg, false
	}
	seg.Text = strings.Join(texts, " ")
	seg.Confidence = roundMS(min(max(prob/float64(len(texts)), 0), 1))
	return seg, true
}

// parseSphinxContinuous reads pocketsphinx_continuous -time yes: per
// utterance, a line of its text, then one line per word ("word start end
// posterior"), from <s> to </s>.
func parseSphinxContinuous(out string) []Segment {
	var segs []Segment
	var words []sphinxWord
	flush := func() {
		if seg, ok := utterance(words); ok {
			segs = append(segs, seg)
		}
		words = words[:0]
	}
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 4 {
			continue // an utterance's text
		}
		start, err1 := strconv.ParseFloat(f[1], 64)
		end, err2 := strconv.ParseFloat(f[2], 64)
		prob, err3 := strconv.ParseFloat(f[3], 64)
		if err1 != nil || err2 != nil || err3 != nil {
			continue
		}
		if f[0] == "<s>" {
			flush()
		}
		words = append(words, sphinxWord{f[0], start, end, prob})
		if f[0] == "</s>" {
			flush()
		}
	}
	flush()
	return segs
}

// parseSphinxJSON reads PocketSphinx 5's output: one JSON object per
// utterance, {"b": start, "d": duration, "p": prob, "t": text, "w":
// [{"b", "d", "p", "t"}]}.
func parseSphinxJSON(out string) ([]Segment, error) {
	var segs []Segment
	for _, line := range strings.Split(out, "\n") {
		line = strings.TrimSpace(line)
		if !strings.HasPrefix(line, "{") {
			continue
		}
		type item struct {
			B, D, P float64
			T       string
			W       []item
		}
		var u item
		if err := json.Unmarshal([]byte(line), &u); err != nil {
			return nil, fmt.Errorf("pocketsphinx: unreadable output: %w", err)
		}
		var words []sphinxWord
		for _, w := range u.W {
			words = append(words, sphinxWord{w.T, w.B, w.B + w.D, w.P})
		}
		if len(words) == 0 && strings.TrimSpace(u.T) != "" {
			words = []sphinxWord{{u.T, u.B, u.B + u.D, u.P}}
		}
		if seg, ok := utterance(words); ok {
			segs = append(segs, seg)
		}
	}
	return segs, nil
}
