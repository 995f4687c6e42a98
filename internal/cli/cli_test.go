package cli

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"strings"
	"testing"
)

func testApp(out, errw *bytes.Buffer) *App {
	return &App{
		Name:    "demo",
		Summary: "a demo program",
		Stdout:  out,
		Stderr:  errw,
		Commands: []*Command{{
			Name:      "greet",
			Summary:   "print a greeting",
			UsageLine: "[flags] NAME",
			Help:      "Greets NAME.\n\nExample:\n  demo greet --loud bob",
			Setup: func(fs *flag.FlagSet) func(context.Context, []string) error {
				loud := fs.Bool("loud", false, "shout the greeting")
				var tags StringList
				fs.Var(&tags, "tag", "a repeatable `TAG`")
				return func(ctx context.Context, args []string) error {
					if len(args) != 1 {
						return Usagef("expected one NAME, got %d arguments", len(args))
					}
					if args[0] == "fail" {
						return errors.New("it failed\nover two lines")
					}
					if args[0] == "exit3" {
						return &ExitError{Code: 3, Err: errors.New("custom")}
					}
					g := "hello " + args[0] + " " + tags.String()
					if *loud {
						g = strings.ToUpper(g)
					}
					out.WriteString(g)
					return nil
				}
			},
		}},
	}
}

func TestRun(t *testing.T) {
	cases := []struct {
		args      []string
		code      int
		out, errs string
	}{
		{[]string{"greet", "--loud", "--tag", "a", "--tag", "b", "bob"}, 0, "HELLO BOB A,B", ""},
		{[]string{"greet", "bob", "--loud"}, 0, "HELLO BOB", ""},
		{[]string{"greet", "--", "--loud"}, 0, "hello --loud", ""},
		{[]string{"greet", "a", "b"}, 2, "", "expected one NAME, got 2 arguments"},
		{[]string{"greet"}, 2, "", "demo greet: expected one NAME, got 0 arguments"},
		{[]string{"greet", "fail"}, 1, "", "demo: it failed over two lines\n"},
		{[]string{"greet", "exit3"}, 3, "", "demo: custom"},
		{[]string{"nope"}, 2, "", `unknown command "nope"`},
		{[]string{}, 2, "", "Commands:"},
		{[]string{"--help"}, 0, "greet", ""},
		{[]string{"greet", "--help"}, 0, "Example:", ""},
		{[]string{"greet", "-h"}, 0, "Usage: demo greet [flags] NAME", ""},
		{[]string{"help", "greet"}, 0, "--loud", ""},
		{[]string{"greet", "--bogus"}, 2, "", "flag provided but not defined"},
	}
	for _, c := range cases {
		var out, errw bytes.Buffer
		code := testApp(&out, &errw).Run(context.Background(), c.args)
		if code != c.code {
			t.Errorf("%v: exit %d, want %d (stderr %q)", c.args, code, c.code, errw.String())
		}
		if !strings.Contains(out.String(), c.out) {
			t.Errorf("%v: stdout %q lacks %q", c.args, out.String(), c.out)
		}
		if strings.Count(out.String()+errw.String(), "Usage:") > 1 {
			t.Errorf("%v: usage printed more than once", c.args)
		}
		if c.code == 0 && c.errs == "" && errw.Len() > 0 {
			t.Errorf("%v: unexpected stderr %q", c.args, errw.String())
		}
		if !strings.Contains(errw.String(), c.errs) {
			t.Errorf("%v: stderr %q lacks %q", c.args, errw.String(), c.errs)
		}
	}
}
