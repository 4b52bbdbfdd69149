//go:build !unix

package kinds

import "os/exec"

// setProcessGroup leaves cmd as it is: without process groups,
// cancellation kills ffmpeg alone.
func setProcessGroup(*exec.Cmd) {}
