package webhook_test

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/spoolrun/spool/webhook"
)

func ExampleSign() {
	secret, err := webhook.ParseSecret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	if err != nil {
		panic(err)
	}
	sig, err := webhook.Sign("msg_p5jXN8AQM9LWM0D4loKWxJek", time.Unix(1614265330, 0),
		[]byte(`{"test": 2432232314}`), secret)
	if err != nil {
		panic(err)
	}
	fmt.Println(sig)
	fmt.Println(secret) // secrets never print
	// Output:
	// v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=
	// [redacted]
}

func ExampleVerify() {
	secret, _ := webhook.ParseSecret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	body := []byte(`{"type": "task.completed"}`)
	sent := time.Unix(1614265330, 0)
	sig, _ := webhook.Sign("msg_1", sent, body, secret)

	h := http.Header{}
	h.Set(webhook.HeaderID, "msg_1")
	h.Set(webhook.HeaderTimestamp, "1614265330")
	h.Set(webhook.HeaderSignature, sig)

	// A real receiver passes nil options: its clock is time.Now.
	clock := func(d time.Duration) *webhook.VerifyOptions {
		return &webhook.VerifyOptions{Now: func() time.Time { return sent.Add(d) }}
	}
	fmt.Println(webhook.Verify(h, body, clock(time.Minute), secret))
	fmt.Println(webhook.Verify(h, []byte(`{"type": "task.failed"}`), clock(time.Minute), secret))
	err := webhook.Verify(h, body, clock(time.Hour), secret)
	fmt.Println(errors.Is(err, webhook.ErrTooOld))
	// Output:
	// <nil>
	// webhook: bad signature
	// true
}
