//go:build !unix

package kinds

import "os/exec"

// setImageProcessGroup leaves cmd as it is: without process groups,
// cancellation kills ffmpeg alone.
func setImageProcessGroup(*exec.Cmd) {}
