// Command spool-bench measures spool on this machine: create, drain,
// latency, scale, memory, events and workflow workloads, each in a child process of
// its own so that its peak RSS is its own. It prints one line per workload.
//
//	go run ./cmd/spool-bench                  # every workload, default sizes
//	go run ./cmd/spool-bench -w drain -n 100000
//	go run ./cmd/spool-bench -w video,video-hd   # needs ffmpeg
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"
)

type options struct {
	N           int    // tasks per workload
	Concurrency int    // workers for drains
	Dir         string // where the databases go
	ScaleRows   int    // finished tasks already in the table for the scale workload
	LatencyN    int    // samples for the latency workload
	Sync        string // SQLite synchronous setting
	CPUProfile  string // file prefix for CPU profiles
	Payload     int    // bytes of options each task carries
	MediaReps   int    // runs of each side in the video workloads
	HookConc    int    // Webhooks.Concurrency for the webhooks workload; 0 is the default
	Input       bool   // drained tasks carry an input file, as media tasks do
}

// result is what a workload child reports to the parent.
type result struct {
	Workload string             `json:"workload"`
	N        int                `json:"n"`
	Figures  map[string]float64 `json:"figures"`
	Note     string             `json:"note,omitempty"`
	RSS      float64            `json:"rss_mib"`
}

var workloads = []struct {
	name string
	run  func(o options) (*result, error)
	desc string
}{
	{"create", runCreate, "Create one at a time from one goroutine"},
	{"create8", runCreate8, "Create from 8 goroutines at once"},
	{"createmany", runCreateMany, "CreateMany in batches of 1,000"},
	{"drain", runDrain, "drain pre-created no-op tasks"},
	{"latency", runLatency, "Create → handler start on an idle engine"},
	{"drain-onevent", runDrainOnEvent, "drain with an OnEvent callback"},
	{"drain-subscribe", runDrainSubscribe, "drain with a Subscribe reader"},
	{"webhooks", runWebhooks, "drain with a webhook_url on every task, to a local receiver"},
	{"memory", runMemory, "drain 100,000 tasks: peak RSS"},
	{"scale", runScale, "drain, Get and List with 1,000,000 finished tasks in the table"},
	{"workflow", runWorkflow, "drain workflows of 10 no-op steps: steps/s against plain tasks/s"},
	{"api", runAPI, "POST /tasks and GET /tasks/{id} over loopback with 1 and 8 clients, beside in-process Create and Get"},
	{"api-list", runAPIList, "GET /tasks through the API with 1,000,000 tasks (-scale-rows), per filter: first page and after cursor"},
	{"floor", runFloor, "SQLite alone, no spool: inserts of one row per transaction, and of 500"},
	// The media workloads need ffmpeg and minutes: they run only when -w
	// names them.
	{"video", runVideo, "video tasks against ffmpeg alone, 2 s 640x360 clip (only with -w)"},
	{"video-hd", runVideoHD, "video tasks against ffmpeg alone, 60 s 1080p clip (only with -w)"},
}

// optIn lists the workloads that run only when -w names them.
var optIn = []string{"video", "video-hd"}

func main() {
	var o options
	var which, child string
	flag.IntVar(&o.N, "n", 20000, "tasks per workload")
	flag.IntVar(&o.Concurrency, "concurrency", 8, "workers for the drain workloads")
	flag.IntVar(&o.HookConc, "webhook-concurrency", 0, "Webhooks.Concurrency for the webhooks workload (default: the engine's, 32)")
	flag.StringVar(&o.Dir, "dir", "", "directory for the databases (default: a temporary directory)")
	flag.IntVar(&o.ScaleRows, "scale-rows", 1_000_000, "finished tasks in the table for the scale workload")
	flag.IntVar(&o.LatencyN, "latency-n", 2000, "samples for the latency workload")
	flag.StringVar(&o.Sync, "sync", "NORMAL", "SQLite synchronous setting: NORMAL survives a process crash, FULL a power loss")
	flag.StringVar(&which, "w", "", "comma-separated workloads to run (default: all): "+names())
	flag.StringVar(&child, "child", "", "run one workload and print its result as JSON (internal)")
	flag.StringVar(&o.CPUProfile, "cpuprofile", "", "write a CPU profile of each workload to this file prefix")
	flag.IntVar(&o.Payload, "payload", 0, "bytes of options each task carries (a media task's row is often 0.5-2 KB)")
	flag.BoolVar(&o.Input, "input", false, "give the drained tasks an input file (one stored file for all), as media tasks have")
	flag.IntVar(&o.MediaReps, "media-reps", 5, "runs of each side in the video workload (video-hd: a third)")
	flag.Parse()

	if child != "" {
		if o.CPUProfile != "" {
			f, err := os.Create(o.CPUProfile + "." + child + ".pprof")
			if err != nil {
				log.Fatal(err)
			}
			pprof.StartCPUProfile(f)
			defer pprof.StopCPUProfile()
		}
		for _, w := range workloads {
			if w.name == child {
				if o.Payload > 0 {
					noopRequest.Options = map[string]any{"note": strings.Repeat("x", o.Payload)}
				}
				r, err := w.run(o)
				if err != nil {
					log.Fatalf("%s: %v", child, err)
				}
				r.Workload = child
				json.NewEncoder(os.Stdout).Encode(r)
				pprof.StopCPUProfile()
				return
			}
		}
		log.Fatalf("unknown workload %q", child)
	}

	if o.Dir == "" {
		dir, err := os.MkdirTemp("", "spool-bench")
		if err != nil {
			log.Fatal(err)
		}
		defer os.RemoveAll(dir)
		o.Dir = dir
	}
	fmt.Printf("spool-bench: n=%d concurrency=%d synchronous=%s payload=%d GOMAXPROCS=%s\n", o.N, o.Concurrency, o.Sync, o.Payload, gomaxprocs())
	for _, w := range workloads {
		if which == "" && contains(optIn, w.name) || which != "" && !contains(strings.Split(which, ","), w.name) {
			continue
		}
		r, err := runChild(o, w.name)
		if err != nil {
			log.Fatalf("%s: %v", w.name, err)
		}
		fmt.Println(format(r))
	}
}

// runChild runs one workload in a child process and reads its peak RSS.
func runChild(o options, name string) (*result, error) {
	dir := filepath.Join(o.Dir, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	cmd := exec.Command(os.Args[0], "-child", name, "-n", fmt.Sprint(o.N), "-concurrency", fmt.Sprint(o.Concurrency),
		"-dir", dir, "-scale-rows", fmt.Sprint(o.ScaleRows), "-latency-n", fmt.Sprint(o.LatencyN), "-sync", o.Sync,
		"-cpuprofile", o.CPUProfile, "-payload", fmt.Sprint(o.Payload), "-media-reps", fmt.Sprint(o.MediaReps),
		"-webhook-concurrency", fmt.Sprint(o.HookConc))
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, os.Stderr
	if err := cmd.Run(); err != nil {
		return nil, err
	}
	var r result
	sc := bufio.NewScanner(&out)
	for sc.Scan() {
		if err := json.Unmarshal(sc.Bytes(), &r); err == nil && r.Workload != "" {
			break
		}
	}
	if r.Workload == "" {
		return nil, fmt.Errorf("no result in %q", out.String())
	}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		r.RSS = float64(ru.Maxrss) / 1024 // KiB on Linux
	}
	return &r, nil
}

func format(r *result) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%-16s n=%-8d", r.Workload, r.N)
	known := []string{"tasks/s", "p50", "p99", "get_p50", "get_p99", "list_p50", "list_p99", "listfailed_p50", "listfailed_p99", "ratio"}
	for _, k := range known {
		v, ok := r.Figures[k]
		if !ok {
			continue
		}
		switch {
		case k == "tasks/s":
			fmt.Fprintf(&b, " %9.0f tasks/s", v)
		case k == "ratio":
			fmt.Fprintf(&b, " %5.0f%% of plain drain", v*100)
		default:
			fmt.Fprintf(&b, " %s=%s", k, time.Duration(v).Round(time.Microsecond/10))
		}
	}
	for _, k := range extraFigures(r, known) {
		v := r.Figures[k]
		switch {
		case strings.HasSuffix(k, "/s"):
			fmt.Fprintf(&b, " %s=%.0f", k, v)
		case strings.Contains(k, "/"):
			fmt.Fprintf(&b, " %s=%.0f%%", k, v*100)
		default:
			fmt.Fprintf(&b, " %s=%s", k, time.Duration(v).Round(time.Microsecond/10))
		}
	}
	fmt.Fprintf(&b, " rss=%.1fMiB", r.RSS)
	if r.Note != "" {
		fmt.Fprintf(&b, "  (%s)", r.Note)
	}
	return b.String()
}

func names() string {
	var ns []string
	for _, w := range workloads {
		ns = append(ns, w.name)
	}
	return strings.Join(ns, ",")
}

func contains(xs []string, x string) bool {
	for _, v := range xs {
		if strings.TrimSpace(v) == x {
			return true
		}
	}
	return false
}

func gomaxprocs() string {
	if v := os.Getenv("GOMAXPROCS"); v != "" {
		return v
	}
	return "default"
}
