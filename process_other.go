//go:build !unix

package spool

// processAlive cannot tell here, so only a stale heartbeat marks an engine
// dead.
func processAlive(int) bool { return true }

// processSpace cannot tell here: engines are judged by their heartbeats.
func processSpace() (bootID, pidNS string) { return "", "" }
