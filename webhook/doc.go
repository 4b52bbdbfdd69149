// Package webhook signs, sends and verifies webhooks as the Standard
// Webhooks specification (https://www.standardwebhooks.com) describes
// them. It stands alone, on the standard library only, so that receivers
// can import it without the rest of spool.
//
// A message carries three headers: webhook-id (the same on every attempt
// of a delivery, for deduplication), webhook-timestamp (the attempt's time
// in Unix seconds) and webhook-signature: "v1," and the base64 of
// HMAC-SHA256 over "id.timestamp.body", keyed with the secret. Secrets
// are written "whsec_" and base64 of 24 to 64 random bytes; NewSecret
// makes 32. A sender holding several secrets signs with all of them, space
// separated, so that a secret is rotated by adding the new one to the
// sender, then moving receivers over, then dropping the old one.
//
// Sender makes one attempt per Send: it never follows redirects, applies a
// timeout, reads a bounded response and reports its Outcome and any
// Retry-After. Queuing, retry schedules and ordering belong to its caller.
//
// A receiver verifies each request with Verify, which refuses a bad
// signature and a timestamp more than 5 minutes off (so a captured request
// cannot be replayed later), or wraps its handler in Middleware:
//
//	secret, err := webhook.ParseSecret(os.Getenv("WEBHOOK_SECRET"))
//	if err != nil {
//		log.Fatal(err)
//	}
//	http.Handle("/hooks", webhook.Middleware(http.HandlerFunc(
//		func(w http.ResponseWriter, r *http.Request) {
//			body, _ := webhook.BodyFromContext(r.Context())
//			id := r.Header.Get(webhook.HeaderID) // deduplicate on this
//			log.Printf("delivery %s: %s", id, body)
//		}), nil, secret))
//
// Secrets print as "[redacted]" with every fmt verb and never appear in
// errors; Secret.Encode is the one way to read one back.
package webhook
