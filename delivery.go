package spool

import (
	"encoding/json"
	"time"
)

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
	// Data is the task JSON as of the event, the payload's "data".
	Data  json.RawMessage `json:"data"`
	State DeliveryState   `json:"state"`
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
}

// WebhookEndpoint is an endpoint that answered 410 Gone and is sent
// nothing more until Engine.EnableWebhookEndpoint.
type WebhookEndpoint struct {
	URL      string    `json:"url"`
	Disabled time.Time `json:"disabled"`
	Reason   string    `json:"reason"`
}
