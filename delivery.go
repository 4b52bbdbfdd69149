package spool

import "time"

// Delivery is the webhook notification of one event to one endpoint: what
// is sent, its state and every attempt made.
type Delivery struct {
	// ID is the event's id, sent as webhook-id on every attempt, so that
	// receivers can tell a retry from a new notification.
	ID     string    `json:"id"`
	TaskID string    `json:"task_id"`
	Type   EventType `json:"type"`
	// EventTime is the event's time, the payload's "timestamp".
	EventTime time.Time `json:"event_time"`
	URL       string    `json:"url"`
	// Task is the task as of the event, the payload's "data": as an
	// Event's Task, the fields a change sets as they were at the event,
	// the others as they are now. Nil if the task has been deleted.
	Task  *Task         `json:"task"`
	State DeliveryState `json:"state"`
	// Attempted counts the attempts recorded; Attempts lists them where the
	// call says so (Engine.Deliveries does).
	Attempted int               `json:"attempted"`
	Attempts  []DeliveryAttempt `json:"attempts,omitempty"`
	// Next is when a sender may next take a pending delivery: its next
	// attempt, or the end of the lease of the sender making one. Zero when
	// the delivery is not pending, or waits for an earlier delivery of its
	// task.
	Next    time.Time `json:"next,omitzero"`
	Created time.Time `json:"created"`
	Updated time.Time `json:"updated"`
}

// DeliveryState is where a delivery stands.
type DeliveryState string

// Delivery states. Pending is the only one that is not final.
const (
	// DeliveryPending waits for its (next) attempt, or for an earlier
	// delivery of its task to end.
	DeliveryPending DeliveryState = "pending"
	// DeliveryDelivered got a 2xx answer.
	DeliveryDelivered DeliveryState = "delivered"
	// DeliveryFailed used up its attempts (WebhookConfig.Schedule) or
	// could not be sent at all.
	DeliveryFailed DeliveryState = "failed"
	// DeliveryDisabled is not sent because its endpoint answered 410 Gone
	// (this delivery or another): see Engine.WebhookEndpoints.
	DeliveryDisabled DeliveryState = "disabled"
)

// DeliveryAttempt is one attempt to send a delivery.
type DeliveryAttempt struct {
	Time time.Time `json:"time"`
	// StatusCode is the response's status, 0 when there was none.
	StatusCode int           `json:"status_code"`
	Latency    time.Duration `json:"latency"`
	// Error says why the attempt failed without a response (a refused
	// connection, a timeout, an address the policy refuses), or is the
	// start of an unsuccessful response's body. Empty on success.
	Error string `json:"error,omitempty"`
}

// DeliveryRecord is what a sender records after an attempt, for
// Store.RecordDelivery.
type DeliveryRecord struct {
	// ID is the delivery's (its event's) id.
	ID string
	// Owner is the sender's instance, which must hold the delivery's lease.
	Owner string
	// Attempt is the attempt made; nil records none and only lets the
	// delivery go (a sender shutting down mid-attempt).
	Attempt *DeliveryAttempt
	// State is the delivery's new state. Pending needs Next.
	State DeliveryState
	// Next is when a pending delivery's next attempt is due.
	Next time.Time
	// Disable, with state DeliveryDisabled, disables the delivery's
	// endpoint (a 410 Gone), giving this reason.
	Disable string
	// Lease, when set, leases the task's next delivery to Owner for this
	// long once this one ends: see Store.RecordDelivery.
	Lease time.Duration
}

// WebhookEndpoint is an endpoint that answered 410 Gone and is sent
// nothing more until Engine.EnableWebhookEndpoint.
type WebhookEndpoint struct {
	URL      string    `json:"url"`
	Disabled time.Time `json:"disabled"`
	Reason   string    `json:"reason"`
}

// DispatchParams says how Store.DispatchDeliveries turns events into
// deliveries.
type DispatchParams struct {
	// Cursor names the stored cursor the events are read after, and moved.
	Cursor string
	// URL is the endpoint of tasks without a webhook_url; "" makes no
	// delivery for them.
	URL string
	// Progress makes deliveries of task.progress events too, except one
	// followed by a later event of its task among those read.
	Progress bool
	// Limit is the most events read. Defaults to 1000.
	Limit int
	// Now is when a new delivery that can go at once is due.
	Now time.Time
}
