//go:build !unix

package kinds

import "os/exec"

// ownGroup leaves cmd as it is: without process groups, cancellation
// kills ffmpeg alone (exec's default).
func ownGroup(*exec.Cmd) {}
