// Command compare runs the same workloads on spool, River (riversqlite) and
// goqite, on one machine with the same SQLite settings, and prints one line
// per (workload, system) plus spool/peer ratios. See README.md.
//
// Each (workload, system) runs in a child process (this binary re-executed
// with the hidden -child-* flags) on a fresh database, so that its peak RSS
// can be read from the child's rusage.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"syscall"
	"time"
)

type config struct {
	n         int
	latencyN  int
	cap       time.Duration
	latCap    time.Duration
	workers   int
	systems   []string
	workloads []string
	dir       string
	tuned     bool
	timeout   time.Duration
}

func main() {
	var (
		cfg                  config
		systemsFlag, wlFlag  string
		childSystem, childWL string
		childTuned           bool
	)
	flag.IntVar(&cfg.n, "n", 20000, "tasks per enqueue/enqueue8/drain run")
	flag.IntVar(&cfg.latencyN, "latency-n", 500, "timed round trips in the latency workload")
	flag.DurationVar(&cfg.cap, "cap", 10*time.Second, "time cap for the timed section of one enqueue/enqueue8/drain run; a capped run reports the tasks done so far")
	flag.DurationVar(&cfg.latCap, "latency-cap", 15*time.Second, "time cap for the samples of one latency run")
	flag.IntVar(&cfg.workers, "workers", 8, "worker concurrency for every system")
	flag.StringVar(&systemsFlag, "systems", "spool,river,goqite", "systems to run, comma-separated")
	flag.StringVar(&wlFlag, "workloads", strings.Join(workloadNames, ","), "workloads to run, comma-separated")
	flag.StringVar(&cfg.dir, "dir", "", "directory for the databases (default: a new temp dir, removed afterwards)")
	flag.BoolVar(&cfg.tuned, "tuned", true, "also run River and goqite drain/latency with their minimum poll intervals (rows labelled +tuned)")
	flag.DurationVar(&cfg.timeout, "timeout", 90*time.Second, "limit for one (workload, system) child run")
	// Hidden flags: set only when the harness re-executes itself.
	flag.StringVar(&childSystem, "child-system", "", "")
	flag.StringVar(&childWL, "child-workload", "", "")
	flag.BoolVar(&childTuned, "child-tuned", false, "")
	flag.Usage = usage
	flag.Parse()

	if childSystem != "" {
		os.Exit(child(childSystem, childWL, childTuned, cfg))
	}

	cfg.systems = splitList(systemsFlag)
	cfg.workloads = splitList(wlFlag)
	if err := validate(cfg); err != nil {
		fmt.Fprintln(os.Stderr, "compare:", err)
		os.Exit(2)
	}
	if err := parent(cfg); err != nil {
		fmt.Fprintln(os.Stderr, "compare:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintf(flag.CommandLine.Output(), "usage: go run . [flags]\n\n")
	flag.VisitAll(func(f *flag.Flag) {
		if strings.HasPrefix(f.Name, "child-") {
			return
		}
		def := ""
		if f.DefValue != "" {
			def = " (default " + f.DefValue + ")"
		}
		fmt.Fprintf(flag.CommandLine.Output(), "  -%s\t%s%s\n", f.Name, f.Usage, def)
	})
}

func splitList(s string) []string {
	var out []string
	for f := range strings.SplitSeq(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func validate(cfg config) error {
	for _, s := range cfg.systems {
		if systems[s] == nil {
			return fmt.Errorf("unknown system %q (have spool, river, goqite)", s)
		}
	}
	for _, w := range cfg.workloads {
		if !slices.Contains(workloadNames, w) {
			return fmt.Errorf("unknown workload %q (have %s)", w, strings.Join(workloadNames, ", "))
		}
	}
	if cfg.n < 1 || cfg.latencyN < 1 || cfg.workers < 1 {
		return errors.New("-n, -latency-n and -workers must be positive")
	}
	return nil
}

// child runs one (system, workload) in this process and prints its result as
// one JSON line on stdout.
func child(sysName, workload string, tuned bool, cfg config) int {
	ctx, cancel := context.WithTimeout(context.Background(), cfg.timeout)
	defer cancel()
	newSys := systems[sysName]
	if newSys == nil {
		fmt.Fprintf(os.Stderr, "unknown system %q\n", sysName)
		return 2
	}
	timeCap := cfg.cap
	if workload == "latency" {
		timeCap = cfg.latCap
	}
	res, err := runWorkload(ctx, newSys(), workload, cfg.dir, cfg.n, cfg.latencyN, timeCap, options{workers: cfg.workers, tuned: tuned})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := json.NewEncoder(os.Stdout).Encode(res); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// row is one (workload, system) line of the report.
type row struct {
	workload string
	system   string // spool, river, goqite
	tuned    bool
	res      result
	rssKiB   int64
	err      error
}

func (r row) label() string {
	if r.tuned {
		return r.system + "+tuned"
	}
	return r.system
}

func parent(cfg config) error {
	base := cfg.dir
	if base == "" {
		d, err := os.MkdirTemp("", "spool-compare-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		base = d
	}
	exe, err := os.Executable()
	if err != nil {
		return err
	}

	printHeader(cfg, base)
	var rows []row
	for _, wl := range cfg.workloads {
		for _, sys := range cfg.systems {
			variants := []bool{false}
			if cfg.tuned && sys != "spool" && (wl == "drain" || wl == "latency") {
				variants = append(variants, true)
			}
			for _, tuned := range variants {
				r := runChild(exe, base, cfg, wl, sys, tuned)
				fmt.Println(formatRow(r))
				rows = append(rows, r)
			}
		}
	}
	printRatios(rows)
	return nil
}

// runChild re-executes this binary for one (workload, system) on a fresh
// database directory and reads its peak RSS.
func runChild(exe, base string, cfg config, wl, sys string, tuned bool) row {
	r := row{workload: wl, system: sys, tuned: tuned}
	dir := filepath.Join(base, r.label()+"-"+wl)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		r.err = err
		return r
	}
	args := []string{
		"-child-system=" + sys,
		"-child-workload=" + wl,
		fmt.Sprintf("-child-tuned=%t", tuned),
		"-dir=" + dir,
		fmt.Sprintf("-n=%d", cfg.n),
		fmt.Sprintf("-cap=%s", cfg.cap),
		fmt.Sprintf("-latency-cap=%s", cfg.latCap),
		fmt.Sprintf("-latency-n=%d", cfg.latencyN),
		fmt.Sprintf("-workers=%d", cfg.workers),
		fmt.Sprintf("-timeout=%s", cfg.timeout),
	}
	ctx, cancel := context.WithTimeout(context.Background(), cfg.timeout+15*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, exe, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	err := cmd.Run()
	if cmd.ProcessState != nil {
		if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
			r.rssKiB = ru.Maxrss // KiB on Linux
		}
	}
	if stderr.Len() > 0 {
		os.Stderr.Write(stderr.Bytes())
	}
	if err != nil {
		r.err = fmt.Errorf("%w: %s", err, strings.TrimSpace(lastLine(stderr.String())))
		return r
	}
	if err := json.Unmarshal(stdout.Bytes(), &r.res); err != nil {
		r.err = fmt.Errorf("bad child output %q: %w", stdout.String(), err)
	}
	os.RemoveAll(dir)
	return r
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}

func printHeader(cfg config, base string) {
	fmt.Printf("spool bench/compare  %s %s/%s  %d CPUs  workers=%d  n=%d  latency-n=%d  cap=%s  latency-cap=%s\n",
		runtime.Version(), runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), cfg.workers, cfg.n, cfg.latencyN, cfg.cap, cfg.latCap)
	fmt.Printf("sqlite: %s, file db per run in %s, WAL, synchronous=NORMAL, busy_timeout=5000\n", modVersion("modernc.org/sqlite"), base)
	for _, sys := range cfg.systems {
		mod := map[string]string{"spool": "github.com/spoolrun/spool", "river": "github.com/riverqueue/river", "goqite": "maragu.dev/goqite"}[sys]
		fmt.Printf("  %-13s %s: %s\n", sys, modVersion(mod), settingsNote[sys](false))
		if cfg.tuned && sys != "spool" {
			fmt.Printf("  %-13s %s (drain and latency only)\n", sys+"+tuned", settingsNote[sys](true))
		}
	}
	fmt.Println()
}

// modVersion reports the version of a module linked into this binary.
func modVersion(path string) string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, m := range bi.Deps {
			if m.Path == path {
				if m.Replace != nil {
					return path + " (" + m.Replace.Path + ")"
				}
				return path + " " + m.Version
			}
		}
	}
	return path
}

func formatRow(r row) string {
	head := fmt.Sprintf("%-9s %-13s", r.workload, r.label())
	if r.err != nil {
		return fmt.Sprintf("%s FAILED: %v", head, r.err)
	}
	rss := fmt.Sprintf("rss=%.1fMiB", float64(r.rssKiB)/1024)
	var capped string
	if r.res.N < r.res.Of {
		capped = fmt.Sprintf("  (time cap: %d of %d)", r.res.N, r.res.Of)
	}
	if r.workload == "latency" {
		return fmt.Sprintf("%s n=%-6d p50=%s p99=%s  %s%s", head, r.res.N, fmtMS(r.res.P50), fmtMS(r.res.P99), rss, capped)
	}
	return fmt.Sprintf("%s n=%-6d %8.0f tasks/s  %s%s", head, r.res.N, r.res.rate(), rss, capped)
}

func fmtMS(v float64) string {
	switch {
	case v < 1:
		return fmt.Sprintf("%.3fms", v)
	case v < 10:
		return fmt.Sprintf("%.2fms", v)
	default:
		return fmt.Sprintf("%.1fms", v)
	}
}

// printRatios prints, per workload, how many times faster spool is than each
// peer row: spool/peer for throughput, peer/spool for latency percentiles.
func printRatios(rows []row) {
	fmt.Println()
	fmt.Println("ratios spool/peer (how many times faster spool is; latency: peer/spool)")
	for _, wl := range workloadNames {
		i := slices.IndexFunc(rows, func(r row) bool { return r.workload == wl && r.system == "spool" })
		if i < 0 || rows[i].err != nil {
			continue
		}
		sp := rows[i].res
		var parts []string
		for _, r := range rows {
			if r.workload != wl || r.system == "spool" || r.err != nil {
				continue
			}
			if wl == "latency" {
				parts = append(parts, fmt.Sprintf("%s/spool p50 %s p99 %s", r.label(), ratio(r.res.P50, sp.P50), ratio(r.res.P99, sp.P99)))
			} else {
				parts = append(parts, fmt.Sprintf("spool/%s %s", r.label(), ratio(sp.rate(), r.res.rate())))
			}
		}
		if len(parts) > 0 {
			fmt.Printf("%-9s %s\n", wl+":", strings.Join(parts, "  "))
		}
	}
}

func ratio(a, b float64) string {
	if b <= 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.1fx", a/b)
}
