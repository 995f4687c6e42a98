package testenv

import (
	"os/exec"
	"syscall"
)

// DieWithParent makes cmd's process receive SIGKILL when the process that started it
// dies. Test harnesses start servers (relay serve, dynalite, the Lambda bootstrap, a
// python peer) as children; if `go test` kills a test binary on timeout, its cleanups
// never run, and without this the children would outlive it and hold ports and
// devices for the next run. Call it before cmd.Start.
func DieWithParent(cmd *exec.Cmd) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
}
