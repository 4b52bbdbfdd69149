package spool

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"slices"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/spoolrun/spool/internal/safehttp"
)

// Handler runs tasks of one kind. Handle returns nil when the task is done
// (after job.SetOutput), an error to retry it, or Permanent(err) to fail it
// for good. ctx is cancelled when the task is cancelled, times out, the
// engine shuts down or loses the task's lease; context.Cause tells which
// (ErrCancelled, ErrTimeout, ErrShutdown, ErrLeaseLost).
type Handler interface {
	Handle(ctx context.Context, job *Job) error
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(ctx context.Context, job *Job) error

// Handle calls f.
func (f HandlerFunc) Handle(ctx context.Context, job *Job) error { return f(ctx, job) }

// Causes of a handler's context cancellation, for context.Cause.
var (
	// ErrCancelled is the cause when the task was cancelled.
	ErrCancelled = errors.New("spool: task cancelled")
	// ErrTimeout is the cause when the attempt ran past its kind's timeout.
	ErrTimeout = errors.New("spool: task timed out")
	// ErrShutdown is the cause when the engine is closing and its grace
	// period ended; the task goes back to pending without using up an
	// attempt.
	ErrShutdown = errors.New("spool: engine shutting down")
	// ErrLeaseLost is the cause when the engine could not renew the task's
	// lease in time and another engine took the task back; this attempt's
	// outcome will not be recorded.
	ErrLeaseLost = errors.New("spool: task lease lost")
)

// Engine creates, stores and runs tasks. Open one per database; it is safe
// for concurrent use.
type Engine struct {
	cfg   Config
	store Store
	ids   *idGen
	log   *slog.Logger
	inst  Instance

	httpOnce sync.Once
	http     *safehttp.Client
	hooks    *webhooks // nil unless Config.Webhooks.Secrets is set
	// noWebhooks warns, once, of a webhook_url that nothing here sends
	// (another engine on the database may).
	noWebhooks sync.Once
	obs        observers // see Observe

	storageOnce sync.Once
	storage     Storage
	storageErr  error
	tempDir     string // the default storage's directory when temporary
	// userProber is whether Config.Prober was set; if not, a handler may
	// supply the prober (see TryRegister), kept in handlerProber under mu.
	userProber    bool
	handlerProber Prober
	// builtinSpecs caches, by kind, BuiltinSpec's answer (nil for other
	// kinds) for spec, which Create and every read (typed) call.
	builtinSpecs sync.Map

	mu       sync.Mutex
	handlers map[string]Handler
	specs    map[string]*KindSpec
	started  bool
	starting bool // Start is under way: no more Register
	closed   bool
	// unavailable maps the kinds a started engine cannot run to the reason.
	unavailable map[string]string
	kinds       []string        // the kinds it claims, sorted; fixed at Start
	sched       *scheduler      // the runs this engine holds and its workers
	handoffs    sync.WaitGroup  // Creates handing a task to a worker
	handlerCtx  context.Context // parent of every handler's context
	leaseCheck  time.Time       // when recover last looked for expired leases

	wake       chan struct{} // a task may be claimable
	changed    signal        // something was committed
	life       context.Context
	endLife    context.CancelFunc      // at the end of Close: subscribers stop
	stopClaims context.CancelFunc      // first thing in Close
	stopLoops  context.CancelFunc      // once the workers are done
	halt       context.CancelCauseFunc // cancels every handler's context
	claimsDone chan struct{}           // closed when runLoop returns
	closeDone  chan struct{}           // closed when Close returns
	loops      sync.WaitGroup
	workers    *errgroup.Group
	settling   sync.WaitGroup // outcomes being recorded
}

// Open opens the engine's store (creating and migrating the database if
// needed) and returns an engine that can create and read tasks. Call Start
// to run them too.
func Open(ctx context.Context, cfg Config) (*Engine, error) {
	userProber := cfg.Prober != nil
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	store := cfg.Store
	if store == nil {
		opts := &SQLiteOptions{}
		if cfg.Durability == SurvivePowerLoss {
			opts.Synchronous = "FULL"
		}
		var err error
		if store, err = OpenSQLite(ctx, cfg.Path, opts); err != nil {
			return nil, fmt.Errorf("spool: open: %w", err)
		}
	}
	host, _ := os.Hostname()
	e := &Engine{
		cfg:   cfg,
		store: store,
		ids:   newIDGen(),
		log:   cfg.Logger,
		// The engine runs workflows and conditions itself.
		handlers:  map[string]Handler{KindWorkflow: workflowHandler{}, KindConditions: conditionsHandler{}},
		specs:     map[string]*KindSpec{},
		sched:     newScheduler(cfg.Concurrency, cfg.KindConcurrency),
		wake:      make(chan struct{}, 1),
		closeDone: make(chan struct{}),
	}
	e.userProber = userProber
	if s, ok := store.(*sqliteStore); ok {
		s.w.observe.Store(&commitObserver{e.observeCommit, e.obs.any})
	}
	e.life, e.endLife = context.WithCancel(context.Background())
	if e.hooks = e.newWebhooks(); e.hooks != nil {
		if err := e.initWebhooks(ctx); err != nil {
			if cfg.Store == nil {
				store.Close()
			}
			return nil, fmt.Errorf("spool: open: %w", err)
		}
	}
	boot, pidNS := processSpace()
	e.inst = Instance{ID: e.ids.next("inst_", time.Now()), Host: host, PID: os.Getpid(),
		BootID: boot, PIDNamespace: pidNS, Started: time.Now()}
	return e, nil
}

// Store returns the engine's store.
func (e *Engine) Store() Store { return e.store }

// Config returns a copy of the engine's configuration, with the defaults filled in,
// so that handlers can follow the same policies (AllowPrivateNetworks,
// AllowNetworks) as the engine.
func (e *Engine) Config() Config {
	c := e.cfg.withDefaults()
	c.Prober = e.prober()
	return c
}

// Register sets the handler for a kind: a built-in kind or a custom one.
// It panics if the kind already has a handler or the engine is started; use
// TryRegister to get an error instead. A handler that also implements
// interface{ Spec() *KindSpec } declares its kind's options. One that
// implements interface{ Prober() Prober } supplies the engine's prober
// when Config.Prober was left nil (the first such handler registered
// wins), so that registering media kinds is enough for uploads and
// outputs to be probed fully.
func (e *Engine) Register(kind string, h Handler) {
	if err := e.TryRegister(kind, h); err != nil {
		panic(err)
	}
}

// TryRegister is Register returning an error instead of panicking.
func (e *Engine) TryRegister(kind string, h Handler) error {
	if kind == "" || h == nil {
		return fmt.Errorf("spool: register: kind and handler are required")
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.started || e.starting {
		return fmt.Errorf("spool: register %s: engine already started", kind)
	}
	if _, ok := e.handlers[kind]; ok {
		return fmt.Errorf("register %s: %w", kind, ErrDuplicateKind)
	}
	e.handlers[kind] = h
	if s, ok := h.(interface{ Spec() *KindSpec }); ok {
		if spec := s.Spec(); spec != nil {
			e.specs[kind] = spec
		}
	}
	if p, ok := h.(interface{ Prober() Prober }); ok && !e.userProber && e.handlerProber == nil {
		e.handlerProber = p.Prober()
	}
	return nil
}

// Start starts running tasks: claiming them, recovering those of dead
// engines, and delivering events to OnEvent. It returns at once; the work
// goes on until Close. An engine that is never started is a pure client.
func (e *Engine) Start(ctx context.Context) error {
	// The store and the handlers' checks (which may run programs) are
	// called without e.mu, so that Create and Get go on meanwhile.
	e.mu.Lock()
	switch {
	case e.closed:
		e.mu.Unlock()
		return ErrClosed
	case e.started || e.starting:
		e.mu.Unlock()
		return fmt.Errorf("spool: start: already started")
	}
	e.starting = true // handlers are fixed from here on
	e.mu.Unlock()
	fail := func(err error) error {
		e.mu.Lock()
		e.starting = false
		e.mu.Unlock()
		return fmt.Errorf("spool: start: %w", err)
	}
	if _, err := e.store.Heartbeat(ctx, &e.inst, e.cfg.LeaseDuration, nil); err != nil {
		return fail(err)
	}
	if err := e.recover(ctx); err != nil {
		return fail(err)
	}
	unavailable := map[string]string{}
	for _, info := range e.Kinds(ctx) {
		if !info.Available {
			unavailable[info.Kind] = info.Reason
		}
	}
	var cursor string
	if e.cfg.OnEvent != nil {
		var err error
		if cursor, err = e.initCursor(ctx); err != nil {
			return fail(err)
		}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return ErrClosed
	}
	e.started, e.unavailable = true, unavailable
	e.kinds = slices.Sorted(maps.Keys(e.handlers))
	if e.cfg.AcceptUnavailableKinds {
		// Their tasks are another process's to run: claimed here, they
		// would only fail.
		e.kinds = slices.DeleteFunc(e.kinds, func(k string) bool { _, ok := unavailable[k]; return ok })
	}
	claimCtx, stopClaims := context.WithCancel(context.Background())
	loopCtx, stopLoops := context.WithCancel(context.Background())
	handlerCtx, halt := context.WithCancelCause(context.Background())
	e.stopClaims, e.stopLoops, e.halt = stopClaims, stopLoops, halt
	e.handlerCtx = handlerCtx
	e.workers = &errgroup.Group{}
	e.workers.SetLimit(e.cfg.Concurrency)
	e.claimsDone = make(chan struct{})
	go func() {
		defer close(e.claimsDone)
		e.runLoop(claimCtx, handlerCtx)
	}()
	e.goLoop(func() { e.heartbeatLoop(loopCtx) })
	e.goLoop(func() { e.maintainLoop(loopCtx) })
	if e.cfg.OnEvent != nil {
		e.goLoop(func() { e.onEventLoop(loopCtx, cursor) })
	}
	e.startWebhooks(loopCtx)
	return nil
}

func (e *Engine) goLoop(f func()) {
	e.loops.Add(1)
	go func() {
		defer e.loops.Done()
		f()
	}()
}

// Close stops the engine: it stops claiming, lets running handlers finish
// until ctx ends, then cancels them (context.Cause is ErrShutdown) and puts
// their tasks back to pending without using up an attempt. It closes the
// store unless Config.Store was given. A Close while another is under way
// waits for that one.
//
// Once ctx has ended, a handler that ignores its cancelled context, or an
// OnEvent callback that does not return, gets one more second; then Close
// returns anyway, with an error naming what is still running. Those
// handlers go on in the background, their outcomes are not recorded, and
// their tasks come back when their leases run out.
func (e *Engine) Close(ctx context.Context) error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		select {
		case <-e.closeDone:
			return nil
		case <-ctx.Done():
			return fmt.Errorf("spool: close: %w", ctx.Err())
		}
	}
	e.closed = true
	started := e.started
	e.mu.Unlock()
	defer close(e.closeDone)
	var errs []error
	if started {
		e.stopClaims()
		<-e.claimsDone    // no claimed task starts after this
		e.handoffs.Wait() // nor a handed-off one (closed refuses new ones)
		workersDone := make(chan struct{})
		go func() {
			e.workers.Wait()
			e.settling.Wait()
			close(workersDone)
		}()
		stuck := !e.await(ctx, workersDone, func() { e.halt(ErrShutdown) })
		e.halt(ErrShutdown)
		e.stopLoops()
		loopsDone := make(chan struct{})
		go func() {
			e.loops.Wait()
			close(loopsDone)
		}()
		if !e.await(ctx, loopsDone, nil) {
			errs = append(errs, fmt.Errorf("OnEvent callback still running: %w", ctx.Err()))
		}
		if stuck {
			var ids []string
			for _, r := range e.sched.snapshot() {
				ids = append(ids, r.task.ID)
			}
			slices.Sort(ids)
			errs = append(errs, fmt.Errorf("handlers still running, or their outcomes still being recorded, for tasks %v: %w",
				ids, ctx.Err()))
		} else {
			// The tasks are settled: forget this instance so nothing waits
			// on its heartbeat.
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			errs = append(errs, e.store.RemoveInstance(rctx, e.inst.ID))
			cancel()
		}
	}
	e.endLife()
	if e.cfg.Store == nil {
		errs = append(errs, e.store.Close())
	}
	errs = append(errs, e.removeTempDir())
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("spool: close: %w", err)
	}
	return nil
}

// await waits for done until ctx ends, then calls onEnd (if not nil) and
// waits closeGrace more. It reports whether done was closed.
func (e *Engine) await(ctx context.Context, done <-chan struct{}, onEnd func()) bool {
	select {
	case <-done:
		return true
	case <-ctx.Done():
	}
	if onEnd != nil {
		onEnd()
	}
	t := time.NewTimer(closeGrace)
	defer t.Stop()
	select {
	case <-done:
		return true
	case <-t.C:
		return false
	}
}

// closeGrace is how long Close waits for handlers once it has cancelled
// them.
const closeGrace = time.Second

// signal is a broadcast: wait returns a channel closed by the next notify.
type signal struct {
	mu sync.Mutex
	ch chan struct{}
}

func (s *signal) wait() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ch == nil {
		s.ch = make(chan struct{})
	}
	return s.ch
}

func (s *signal) notify() {
	s.mu.Lock()
	if s.ch != nil {
		close(s.ch)
		s.ch = nil
	}
	s.mu.Unlock()
}

// poke wakes the run loop if it sleeps.
func (e *Engine) poke() {
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

// processStart is when this process started, to tell its engines' instance
// records from those of an earlier process that had the same pid.
var processStart = time.Now()
