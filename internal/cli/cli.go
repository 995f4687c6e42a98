// Package cli is the small command framework shared by the relay, agent and signer
// commands, so that all three behave the same way for a user: subcommands, --help
// that teaches, one-line errors and stable exit codes.
//
// Exit codes: 0 success, 1 failure, 2 bad usage, 130 interrupted.
// A failure is printed as a single line "<program>: <error>" on stderr; no stack
// traces ever reach the user.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
)

// Command is one subcommand, such as "agent sign".
type Command struct {
	// Name is the subcommand word, e.g. "sign".
	Name string
	// Summary is one line shown in the program's command list.
	Summary string
	// UsageLine shows the argument shape, e.g. "[flags] INPUT [OUTPUT]".
	UsageLine string
	// Help is the long description printed by --help: what the command does, why,
	// and examples. Plain text, already wrapped.
	Help string
	// Setup defines the command's flags on fs and returns the function that runs
	// the command with the positional arguments left after flag parsing.
	Setup func(fs *flag.FlagSet) func(ctx context.Context, args []string) error
}

// App is a program made of subcommands.
type App struct {
	Name     string
	Summary  string
	Commands []*Command
	// Stdout and Stderr default to os.Stdout and os.Stderr.
	Stdout, Stderr io.Writer
}

// UsageError marks an error as a usage problem: exit code 2 and a pointer to --help.
type UsageError struct{ Msg string }

func (e *UsageError) Error() string { return e.Msg }

// Usagef returns a *UsageError with a formatted message.
func Usagef(format string, args ...any) error {
	return &UsageError{Msg: fmt.Sprintf(format, args...)}
}

// ExitError lets a command choose its exit code while still printing Err.
type ExitError struct {
	Code int
	Err  error
}

func (e *ExitError) Error() string { return e.Err.Error() }
func (e *ExitError) Unwrap() error { return e.Err }

// Main runs the app with os.Args and exits. It cancels the context on SIGINT or
// SIGTERM so commands can clean up (say goodbye, remove temp files) before exiting.
func (a *App) Main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := a.Run(ctx, os.Args[1:])
	stop()
	os.Exit(code)
}

// Run runs the app with args (without the program name) and returns the exit code.
func (a *App) Run(ctx context.Context, args []string) int {
	stdout, stderr := a.Stdout, a.Stderr
	if stdout == nil {
		stdout = os.Stdout
	}
	if stderr == nil {
		stderr = os.Stderr
	}
	if len(args) == 0 {
		a.printUsage(stderr)
		return 2
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		if len(args) > 1 && args[0] == "help" {
			if c := a.find(args[1]); c != nil {
				fs := a.flagSet(c, stdout)
				c.Setup(fs)
				fs.Usage()
				return 0
			}
		}
		a.printUsage(stdout)
		return 0
	}
	c := a.find(args[0])
	if c == nil {
		fmt.Fprintf(stderr, "%s: unknown command %q\n", a.Name, args[0])
		fmt.Fprintf(stderr, "Run '%s --help' for the list of commands.\n", a.Name)
		return 2
	}
	fs := a.flagSet(c, stderr)
	run := c.Setup(fs)
	// The flag package would print the whole usage on every parse error and on
	// --help, to one writer. Silence it: help goes to stdout, a parse error gets one
	// line and a pointer to --help on stderr.
	usage := fs.Usage
	fs.Usage = func() {}
	fs.SetOutput(io.Discard)
	positional, err := parseInterspersed(fs, args[1:])
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(stdout)
			usage()
			return 0
		}
		fmt.Fprintf(stderr, "%s %s: %s\n", a.Name, c.Name, err)
		fmt.Fprintf(stderr, "Run '%s %s --help' for usage.\n", a.Name, c.Name)
		return 2
	}
	fs.SetOutput(stderr)
	err = run(ctx, positional)
	if err == nil {
		return 0
	}
	var ue *UsageError
	if errors.As(err, &ue) {
		fmt.Fprintf(stderr, "%s %s: %s\n", a.Name, c.Name, ue.Msg)
		fmt.Fprintf(stderr, "Run '%s %s --help' for usage.\n", a.Name, c.Name)
		return 2
	}
	fmt.Fprintf(stderr, "%s: %s\n", a.Name, oneLine(err.Error()))
	var ee *ExitError
	if errors.As(err, &ee) {
		return ee.Code
	}
	if ctx.Err() != nil {
		return 130
	}
	return 1
}

// parseInterspersed parses flags wherever they appear among the positional arguments,
// as rcodesign users write them ("sign in.bin out.bin --p12-file k.p12"). A "--"
// ends flag parsing: everything after it is positional.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if consumed := len(args) - len(rest); consumed > 0 && args[consumed-1] == "--" {
			return append(positional, rest...), nil
		}
		if len(rest) == 0 {
			return positional, nil
		}
		positional = append(positional, rest[0])
		args = rest[1:]
	}
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

func (a *App) find(name string) *Command {
	for _, c := range a.Commands {
		if c.Name == name {
			return c
		}
	}
	return nil
}

func (a *App) flagSet(c *Command, out io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(a.Name+" "+c.Name, flag.ContinueOnError)
	fs.SetOutput(out)
	fs.Usage = func() {
		w := fs.Output()
		fmt.Fprintf(w, "Usage: %s %s %s\n\n", a.Name, c.Name, c.UsageLine)
		if c.Help != "" {
			fmt.Fprintf(w, "%s\n\n", strings.TrimRight(c.Help, "\n"))
		} else {
			fmt.Fprintf(w, "%s\n\n", c.Summary)
		}
		n := 0
		fs.VisitAll(func(*flag.Flag) { n++ })
		if n > 0 {
			fmt.Fprintln(w, "Flags:")
			printFlags(w, fs)
		}
	}
	return fs
}

// printFlags prints flags with a double-dash prefix, as users of rcodesign type them.
func printFlags(w io.Writer, fs *flag.FlagSet) {
	var flags []*flag.Flag
	fs.VisitAll(func(f *flag.Flag) { flags = append(flags, f) })
	sort.Slice(flags, func(i, j int) bool { return flags[i].Name < flags[j].Name })
	for _, f := range flags {
		name, usage := flag.UnquoteUsage(f)
		line := "  --" + f.Name
		if name != "" {
			line += " " + name
		}
		fmt.Fprintln(w, line)
		fmt.Fprintf(w, "        %s", strings.ReplaceAll(usage, "\n", "\n        "))
		if f.DefValue != "" && f.DefValue != "false" && f.DefValue != "[]" && f.DefValue != "0" {
			fmt.Fprintf(w, " (default %q)", f.DefValue)
		}
		fmt.Fprintln(w)
	}
}

func (a *App) printUsage(w io.Writer) {
	fmt.Fprintf(w, "%s: %s\n\nUsage: %s <command> [flags] [args]\n\nCommands:\n", a.Name, a.Summary, a.Name)
	for _, c := range a.Commands {
		fmt.Fprintf(w, "  %-36s %s\n", c.Name, c.Summary)
	}
	fmt.Fprintf(w, "\nRun '%s <command> --help' for a command's flags and examples.\n", a.Name)
}

// StringList is a repeatable string flag: --pem-source a.pem --pem-source b.pem.
type StringList []string

func (s *StringList) String() string { return strings.Join(*s, ",") }

// Set appends one value.
func (s *StringList) Set(v string) error { *s = append(*s, v); return nil }
