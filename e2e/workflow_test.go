package e2e

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/farsign/farsign/internal/fixtures"
	"github.com/farsign/farsign/internal/keyfile"
	"github.com/farsign/farsign/internal/testenv"
	"github.com/farsign/farsign/internal/testtsa"
)

// workflow is the part of a GitHub Actions workflow file the test runs.
type workflow struct {
	On   map[string]any `yaml:"on"`
	Jobs map[string]struct {
		TimeoutMinutes int               `yaml:"timeout-minutes"`
		Env            map[string]string `yaml:"env"`
		Steps          []struct {
			ID             string            `yaml:"id"`
			Name           string            `yaml:"name"`
			Run            string            `yaml:"run"`
			Env            map[string]string `yaml:"env"`
			TimeoutMinutes int               `yaml:"timeout-minutes"`
		} `yaml:"steps"`
	} `yaml:"jobs"`
}

var expression = regexp.MustCompile(`\$\{\{\s*(secrets|vars)\.([A-Za-z0-9_]+)\s*\}\}`)

// TestGitHubActionsExample runs the signing steps of
// examples/github-actions/sign.yml the way the GitHub runner runs them (each
// `run` as its own `bash --noprofile --norc -eo pipefail` script, with the
// job's and the step's env, $RUNNER_TEMP and a fresh $GITHUB_STEP_SUMMARY per
// step), with the real agent and a `relay serve`. Between the two steps the
// key holder reads the join string from the first step's summary — the
// Markdown GitHub shows on the run page — and joins with `signer
// remote-sign`. Both schemes, chosen as the workflow chooses them: by whether
// the FARSIGN_SHARED_SECRET secret is set.
func TestGitHubActionsExample(t *testing.T) {
	bin := binaries(t)
	bash := testenv.LookPath(t, "bash", "apt-get install bash")
	testenv.LookPath(t, "tail", "coreutils")
	raw, err := os.ReadFile(filepath.Join(testenv.RepoRoot(t), "examples", "github-actions", "sign.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var wf workflow
	if err := yaml.Unmarshal(raw, &wf); err != nil {
		t.Fatalf("sign.yml: %v", err)
	}
	if _, ok := wf.On["workflow_dispatch"]; !ok {
		t.Error("the workflow is not started by workflow_dispatch")
	}
	job, ok := wf.Jobs["sign"]
	if !ok {
		t.Fatal("no job \"sign\"")
	}
	if job.TimeoutMinutes <= 0 || job.TimeoutMinutes > 60 {
		t.Errorf("job timeout-minutes = %d, want a short explicit bound", job.TimeoutMinutes)
	}
	steps := map[string]int{}
	for i, s := range job.Steps {
		if s.ID != "" {
			steps[s.ID] = i
		}
		if strings.Contains(s.Run, "${{") {
			t.Errorf("step %q interpolates an expression into its script (inject through env instead)", s.Name)
		}
	}
	for _, id := range []string{"session", "wait"} {
		if _, ok := steps[id]; !ok {
			t.Fatalf("no step with id %q", id)
		}
	}
	if job.Steps[steps["wait"]].TimeoutMinutes <= 0 {
		t.Error("the wait step has no timeout-minutes")
	}

	dir := t.TempDir()
	relayURL := startRelayServe(t, filepath.Join(bin, "relay"), dir)
	signerBin := filepath.Join(bin, "signer")
	gen := exec.Command(signerBin, "generate-self-signed-certificate", "--person-name", "Workflow Key Holder", "--pem-filename", "holder")
	gen.Dir = dir
	if out, err := gen.CombinedOutput(); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	hello := fixtures.GoDarwinBinary(t, "arm64")
	// The one setting changed from the workflow: no internet here, so a local
	// RFC 3161 authority stands in for Apple's.
	tsa := testtsa.New(t)
	if err := keyfile.WriteCertificatesPEM(filepath.Join(dir, "tsa-roots.pem"), tsa.CACertificate()); err != nil {
		t.Fatal(err)
	}
	if _, ok := job.Env["TIMESTAMP_URL"]; !ok {
		t.Fatal("the job has no TIMESTAMP_URL")
	}

	for _, tc := range []struct {
		name, secret string
		cancel       bool // cancel the run while the agent waits for the key holder
	}{{"publickey0", "", false}, {"sharedsecret0", "shared by CI and the key holder", false}, {"cancelled", "", true}} {
		t.Run(tc.name, func(t *testing.T) {
			ws := filepath.Join(t.TempDir(), "workspace")
			runnerTemp := filepath.Join(filepath.Dir(ws), "runner-temp")
			for _, d := range []string{filepath.Join(ws, "dist"), filepath.Join(ws, ".github"), runnerTemp} {
				if err := os.MkdirAll(d, 0o755); err != nil {
					t.Fatal(err)
				}
			}
			copyFile(t, hello, filepath.Join(ws, "dist", "mytool"))
			copyFile(t, filepath.Join(dir, "holder.crt"), filepath.Join(ws, ".github", "farsign-signer.pem"))
			exprs := map[string]string{
				"vars.FARSIGN_RELAY_URL":        relayURL,
				"secrets.FARSIGN_SHARED_SECRET": tc.secret,
			}
			baseEnv := append(os.Environ(),
				"PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"),
				"RUNNER_TEMP="+runnerTemp, "GITHUB_WORKSPACE="+ws, "CI=true", "GITHUB_ACTIONS=true")
			baseEnv = append(baseEnv, expand(t, job.Env, exprs)...)
			baseEnv = append(baseEnv, "TIMESTAMP_URL="+tsa.URL())

			// stepCmd prepares a step the way the runner runs it:
			// bash -eo pipefail on the step's script, in the workspace.
			stepCmd := func(ctx context.Context, id string) (*exec.Cmd, string) {
				s := job.Steps[steps[id]]
				summaryPath := filepath.Join(runnerTemp, "step_summary_"+id)
				script := filepath.Join(runnerTemp, id+".sh")
				if err := os.WriteFile(script, []byte(s.Run), 0o700); err != nil {
					t.Fatal(err)
				}
				cmd := exec.CommandContext(ctx, bash, "--noprofile", "--norc", "-eo", "pipefail", script)
				cmd.Dir = ws
				cmd.Env = append(append(append([]string(nil), baseEnv...), expand(t, s.Env, exprs)...), "GITHUB_STEP_SUMMARY="+summaryPath)
				// Like the runner, wait for the step's output to close: a
				// background process still holding it would hang the step.
				cmd.WaitDelay = time.Second
				return cmd, summaryPath
			}
			runStep := func(id string) (summary, output string) {
				ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
				defer cancel()
				cmd, summaryPath := stepCmd(ctx, id)
				out, err := cmd.CombinedOutput()
				if err != nil {
					t.Fatalf("step %q: %v\n%s", job.Steps[steps[id]].Name, err, out)
				}
				b, _ := os.ReadFile(summaryPath)
				return string(b), string(out)
			}

			summary, log := runStep("session")
			if !strings.Contains(log, "(waiting for remote signer to join)") {
				t.Errorf("the session step's log lacks the join instructions:\n%s", log)
			}
			// The key holder copies the PEM block from the run's summary page.
			pemBlock := regexp.MustCompile(`(?s)-----BEGIN SESSION JOIN STRING-----.*?-----END SESSION JOIN STRING-----`).FindString(summary)
			if pemBlock == "" || !strings.Contains(summary, "### Remote signing session waiting for a signer") {
				t.Fatalf("no join string in the step summary:\n%s", summary)
			}
			if tc.cancel {
				// Cancelling the run: the runner sends the running step (the
				// wait) SIGINT. The step must pass it on to the agent, which
				// says goodbye, so the session is gone from the relay at once.
				ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
				defer cancel()
				cmd, _ := stepCmd(ctx, "wait")
				var out testenv.Buffer
				cmd.Stdout, cmd.Stderr = &out, &out
				if err := cmd.Start(); err != nil {
					t.Fatal(err)
				}
				// The step is following the agent's log once it has printed it.
				for deadline := time.Now().Add(20 * time.Second); !strings.Contains(out.String(), "waiting for remote signer to join"); {
					if time.Now().After(deadline) {
						t.Fatalf("the wait step never showed the agent's log:\n%s", out.String())
					}
					time.Sleep(50 * time.Millisecond)
				}
				if err := cmd.Process.Signal(os.Interrupt); err != nil {
					t.Fatal(err)
				}
				err := cmd.Wait()
				if err == nil {
					t.Fatalf("the cancelled wait step succeeded:\n%s", out.String())
				}
				log := out.String()
				for _, want := range []string{"agent: remote signing session interrupted"} {
					if !strings.Contains(log, want) {
						t.Errorf("the cancelled step's log lacks %q:\n%s", want, log)
					}
				}
				if _, err := os.Stat(filepath.Join(ws, "dist", "mytool.signed")); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("output after cancel: %v", err)
				}
				// The session is gone: a key holder joining late is told so.
				joinFile := filepath.Join(dir, tc.name+".join.txt")
				if err := os.WriteFile(joinFile, []byte(pemBlock+"\n"), 0o600); err != nil {
					t.Fatal(err)
				}
				late := exec.Command(signerBin, "remote-sign", "--pem-source", filepath.Join(dir, "holder.key"), "--sjs-path", joinFile)
				if out, err := late.CombinedOutput(); err == nil || !strings.Contains(string(out), "session") {
					t.Errorf("a signer joining the cancelled session: %v\n%s", err, out)
				} else {
					t.Logf("late signer: %s", strings.TrimSpace(string(out)))
				}
				return
			}
			joinFile := filepath.Join(dir, tc.name+".join.txt")
			if err := os.WriteFile(joinFile, []byte(pemBlock+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			args := []string{"remote-sign", "--pem-source", filepath.Join(dir, "holder.key"), "--sjs-path", joinFile}
			env := os.Environ()
			if tc.secret != "" {
				if !strings.Contains(summary, "--remote-signing-url "+relayURL) {
					t.Errorf("the summary does not tell a sharedsecret0 signer which relay to use:\n%s", summary)
				}
				args = append(args, "--remote-shared-secret-env", "HOLDER_SECRET", "--remote-signing-url", relayURL)
				env = append(env, "HOLDER_SECRET="+tc.secret)
			}
			sign := exec.Command(signerBin, args...)
			sign.Env = env
			if out, err := sign.CombinedOutput(); err != nil {
				t.Fatalf("signer: %v\n%s", err, out)
			} else if !strings.Contains(string(out), "session ended after 1 signature(s)") {
				t.Errorf("signer output:\n%s", out)
			}

			_, log = runStep("wait")
			wants := []string{"relay server confirmed session termination", "wrote dist/mytool.signed"}
			if tc.secret != "" {
				// The committed certificate pins the signer in sharedsecret0.
				wants = append(wants, "is an expected one")
			}
			for _, want := range wants {
				if !strings.Contains(log, want) {
					t.Errorf("the wait step's log lacks %q:\n%s", want, log)
				}
			}
			verify := exec.Command(filepath.Join(bin, "agent"), "verify", "--roots", filepath.Join(dir, "holder.crt"),
				"--timestamp-roots", filepath.Join(dir, "tsa-roots.pem"), filepath.Join(ws, "dist", "mytool.signed"))
			if out, err := verify.CombinedOutput(); err != nil {
				t.Fatalf("agent verify: %v\n%s", err, out)
			} else if !strings.Contains(string(out), "ok   time-stamp: issued") || !strings.Contains(string(out), "signature is valid") {
				t.Errorf("agent verify:\n%s", out)
			}
		})
	}
}

// expand turns a workflow env map into KEY=VALUE pairs, evaluating the only
// expressions the example may use: ${{ secrets.X }} and ${{ vars.X }}.
func expand(t *testing.T, env map[string]string, ctx map[string]string) []string {
	t.Helper()
	var out []string
	for k, v := range env {
		v = expression.ReplaceAllStringFunc(v, func(m string) string {
			sub := expression.FindStringSubmatch(m)
			val, ok := ctx[sub[1]+"."+sub[2]]
			if !ok {
				t.Fatalf("the workflow uses %s, which the test does not provide", m)
			}
			return val
		})
		if strings.Contains(v, "${{") {
			t.Fatalf("env %s=%q: unsupported expression", k, v)
		}
		out = append(out, fmt.Sprintf("%s=%s", k, v))
	}
	return out
}

func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, b, 0o755); err != nil {
		t.Fatal(err)
	}
}
