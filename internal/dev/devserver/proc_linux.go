package devserver

import "syscall"

// The server runs in its own process group, so a terminal's Ctrl-C reaches
// only the parent, which shuts it down in order; and it dies with the parent
// if the parent is killed outright.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
}
