package kinds_test

import (
	"context"
	"fmt"
	"log"

	"github.com/spoolrun/spool"
	"github.com/spoolrun/spool/kinds"
)

// ExampleRegister registers the kinds this package implements and shows
// which kinds the engine can run. (video, audio and thumbnails are
// available where ffmpeg is installed; speech and subtitles where a speech
// provider is configured or pocketsphinx installed, too.)
func ExampleRegister() {
	ctx := context.Background()
	engine, err := spool.Open(ctx, spool.Config{Path: ":memory:"})
	if err != nil {
		log.Fatal(err)
	}
	defer engine.Close(ctx)
	if err := kinds.Register(engine, nil); err != nil {
		log.Fatal(err)
	}
	for _, info := range engine.Kinds(ctx) {
		switch {
		case info.Kind != "ingest" && info.Kind != "http":
		case info.Available:
			fmt.Printf("%s: available\n", info.Kind)
		default:
			fmt.Printf("%s: unavailable: %s\n", info.Kind, info.Reason)
		}
	}
	// Output:
	// ingest: available
	// http: available
}
