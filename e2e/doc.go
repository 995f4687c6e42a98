// Package e2e holds farsign's whole-pipeline tests: the three commands users
// run — `relay serve`, `signer remote-sign` and `agent sign --remote-...` —
// built with `go build` and run as separate processes talking over loopback,
// exactly as a CI job, a key holder and a relay would.
//
// It has no code of its own; the scenarios are testscript files in testdata/
// (read them as worked examples of the command lines), the quickstart script
// is run as a test, and BenchmarkRemoteSignNode measures a remote signing of
// a 147 MB binary against local signing.
//
//	go test ./e2e/
//	go test -run '^$' -bench RemoteSignNode -benchtime 5x ./e2e/
package e2e
