package spool

import (
	"log/slog"
	"maps"
	"math/rand/v2"
	"net/netip"
	"runtime"
	"slices"
	"time"
)

// Config configures an Engine. The zero value is usable: a spool.db file in
// the working directory, run by as many workers as there are CPUs.
type Config struct {
	// Path is the SQLite database file. Defaults to "spool.db". ":memory:"
	// gives a private in-memory database, gone when the engine closes.
	// Ignored when Store is set.
	Path string
	// Store persists the tasks. Defaults to the SQLite store at Path.
	Store Store
	// Durability chooses what a committed change survives. Defaults to
	// SurviveProcessCrash.
	Durability Durability

	// Storage holds the bytes of files. Defaults to a local directory,
	// DataDir.
	Storage Storage
	// DataDir is the directory of the default Storage. Defaults to Path +
	// ".files" beside the database file; with ":memory:" or a Store of your
	// own, to a temporary directory removed by Close.
	DataDir string
	// Prober reads the media properties of input and output files.
	// Defaults to the prober a registered handler supplies (kinds.Register
	// supplies kinds.DefaultProber, which uses ffprobe), else BasicProber().
	Prober Prober
	// OrphanFileAge is how old stored bytes without a file record must be
	// before they are deleted: the bytes of an output whose task will never
	// record it (a crash between writing them and completing), once the
	// task has finished, or of an upload whose record was never stored.
	// Bytes of a task that is still pending or running are kept however old.
	// Defaults to 1h.
	OrphanFileAge time.Duration
	// AcceptUnavailableKinds lets a started engine create tasks of kinds it
	// cannot run (no handler, or a missing program), for another process
	// to run: it does not claim them, so that they wait for an engine that
	// can. Defaults to false: Create refuses them with the reason, and the
	// tasks of such a kind stored anyway (by an engine not yet started,
	// which accepts every known kind, or by another process) are claimed
	// and fail with it. A kind that runs some tasks and not others (a
	// TaskChecker: image without ffmpeg makes no WebP) is claimed either way.
	AcceptUnavailableKinds bool

	// Concurrency is the most handlers running at once. Defaults to
	// GOMAXPROCS. While handlers take under 5ms on average, the engine also
	// claims up to eight times as many tasks ahead, so that one claim feeds
	// many runs; they wait in processing for a free worker.
	Concurrency int
	// KindConcurrency caps the handlers of one kind running at once (video
	// is heavy, http is light), within Concurrency. Defaults to no cap
	// beyond Concurrency.
	KindConcurrency map[string]int
	// MaxAttempts is how many times a task is tried before it ends in
	// error. Defaults to 3.
	MaxAttempts int
	// Backoff returns how long a task waits before its next attempt, given
	// the attempt that just failed (1 for the first). Defaults to
	// DefaultBackoff.
	Backoff func(attempt int) time.Duration
	// Timeout bounds one attempt of any kind. Defaults to none.
	Timeout time.Duration
	// KindTimeout bounds one attempt of a kind, overriding Timeout.
	// Defaults to none.
	KindTimeout map[string]time.Duration

	// LeaseDuration is how long a claimed task stays held without a renewal
	// before any engine may take it back, counted from the commit of the
	// claim or renewal. An engine on another host, or in another PID
	// namespace or boot of this one, is taken for dead when it has not
	// recorded a heartbeat for this long. Defaults to 30s.
	LeaseDuration time.Duration
	// HeartbeatInterval is how often a running engine records that it is
	// alive and renews its leases. Defaults to 1s.
	HeartbeatInterval time.Duration
	// PollInterval is how often a started engine looks for tasks that
	// another process created, and how often Wait and event readers look
	// for changes another process made. Tasks created through this engine
	// start at once. Defaults to 1s.
	PollInterval time.Duration
	// ProgressInterval is the least time between two progress writes of one
	// task; progress reported in between is coalesced. Defaults to 250ms.
	ProgressInterval time.Duration

	// OnEvent is called with every event, in commit order, one at a time,
	// from a goroutine of its own. Its position is stored, so that after a
	// restart it resumes where it stopped: delivery is at least once.
	// Defaults to nil: no callback.
	OnEvent func(Event)
	// EventRetention is how long events are kept; an event that a stored
	// cursor (OnEvent's, or any other reader's) has not passed is kept
	// however old. Defaults to 24h.
	EventRetention time.Duration
	// Retention is how long finished tasks of each final status (completed,
	// failed, error, cancelled) are kept after they finished (Task.Updated).
	// A started engine then deletes them (looking at least once a minute,
	// 500 tasks per transaction) as Engine.Delete does: with their
	// workflow steps, their events (no longer delivered, then pruned) and
	// the files they produced that no other task takes as input, records
	// and bytes. Workflow steps go with their parent, never on their own;
	// uploads (Engine.CreateFile) are never deleted this way.
	// Defaults to nil: every task and output is kept forever (outputs are
	// the product). Open refuses a status that is not final, or a negative
	// duration.
	Retention map[Status]time.Duration
	// EventCursor names OnEvent's stored position. Defaults to "on_event".
	// Engines on one database whose OnEvent callbacks each want every
	// event need names of their own. Engines that share a name share one
	// stored position, which only moves forward: each engine delivers
	// every event it reads, and after a restart resumes from the furthest
	// position any of them saved, so an event only a slower engine had
	// still to deliver may be skipped then.
	//
	// Events are pruned only once every stored cursor has passed them: a
	// name no longer used holds them back until it is removed with
	// Store().DeleteCursor.
	EventCursor string

	// Webhooks configures the webhook notifications of task events, sent to
	// each task's webhook_url (or Webhooks.URL). Defaults to none sent: an
	// engine sends webhooks only once Webhooks.Secrets is set, and warns
	// (once) of a task created with a webhook_url before that.
	Webhooks WebhookConfig

	// AllowLocalFiles lets requests name file:// URLs as inputs. Defaults to
	// false.
	AllowLocalFiles bool
	// AllowPrivateNetworks lets requests and downloads reach loopback,
	// private and link-local addresses and localhost, for local development
	// and tests. Defaults to false.
	AllowPrivateNetworks bool
	// AllowNetworks lets downloads reach these address ranges even though
	// they are private, for example a media server on the local network.
	// Unspecified, multicast and broadcast addresses stay refused whatever
	// the ranges. Defaults to none.
	AllowNetworks []netip.Prefix
	// CreatedBy is recorded as the creator of the tasks this engine creates.
	// Defaults to empty.
	CreatedBy string

	// Logger receives the engine's logs. Defaults to slog.Default().
	Logger *slog.Logger
}

// Durability chooses what a committed change survives.
type Durability int

const (
	// SurviveProcessCrash (the default) keeps every commit across a crash
	// or kill of the process, but the last commits may be lost on power
	// loss (SQLite WAL with synchronous=NORMAL).
	SurviveProcessCrash Durability = iota
	// SurvivePowerLoss syncs every commit to disk (synchronous=FULL), at a
	// cost per commit.
	SurvivePowerLoss
)

// DefaultBackoff waits 1s after the first failed attempt and doubles each
// time up to 10 minutes, with ±20% jitter so that tasks that failed together
// do not retry together.
func DefaultBackoff(attempt int) time.Duration {
	d := time.Second << min(max(attempt-1, 0), 10)
	d = min(d, 10*time.Minute)
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
}

// withDefaults fills in the defaults, and copies the maps and slices, so
// that a caller changing its Config later does not change a running
// engine.
func (c Config) withDefaults() Config {
	c.KindConcurrency = maps.Clone(c.KindConcurrency)
	c.KindTimeout = maps.Clone(c.KindTimeout)
	c.AllowNetworks = slices.Clone(c.AllowNetworks)
	c.Retention = maps.Clone(c.Retention)
	c.Webhooks = c.Webhooks.withDefaults()
	if c.Path == "" {
		c.Path = "spool.db"
	}
	if c.Concurrency <= 0 {
		c.Concurrency = runtime.GOMAXPROCS(0)
	}
	if c.MaxAttempts <= 0 {
		c.MaxAttempts = 3
	}
	if c.Backoff == nil {
		c.Backoff = DefaultBackoff
	}
	if c.LeaseDuration <= 0 {
		c.LeaseDuration = 30 * time.Second
	}
	if c.HeartbeatInterval <= 0 {
		c.HeartbeatInterval = time.Second
	}
	if c.PollInterval <= 0 {
		c.PollInterval = time.Second
	}
	if c.ProgressInterval <= 0 {
		c.ProgressInterval = 250 * time.Millisecond
	}
	if c.EventRetention <= 0 {
		c.EventRetention = 24 * time.Hour
	}
	if c.EventCursor == "" {
		c.EventCursor = "on_event"
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Prober == nil {
		c.Prober = BasicProber()
	}
	if c.OrphanFileAge <= 0 {
		c.OrphanFileAge = time.Hour
	}
	return c
}

// validate refuses settings that no default can stand for.
func (c *Config) validate() error {
	for st, age := range c.Retention {
		if !st.Terminal() {
			return invalid("Config.Retention", "%q is not a final status (completed, failed, error or cancelled)", st)
		}
		if age < 0 {
			return invalid("Config.Retention", "%s is negative for %s", age, st)
		}
	}
	if err := c.Webhooks.validate(c); err != nil {
		return err
	}
	return nil
}
