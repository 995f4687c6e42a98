package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/farsign/farsign/internal/dynalite"
	"github.com/farsign/farsign/relay/cluster"
	"github.com/farsign/farsign/relay/dynamostore"
)

// Cluster mode (-relays R, R > 1) measures what the project offers for more
// connections than one process can hold: R `relay serve --store dynamodb
// --cluster-listen` processes sharing one table, delivering to each other.
// DynamoDB is dynalite here (an in-memory implementation of its API on
// node), a stand-in whose own cost is reported apart from the relays'.

// region is what the relays and the table check sign requests for; dynalite
// and DynamoDB Local ignore it.
const region = "us-east-1"

// clusterRun is the cluster-mode set-up: a DynamoDB endpoint (dynalite,
// unless -dynamodb-endpoint names one), a fresh table, and the relays.
type clusterRun struct {
	endpoint, table string
	secret          string   // the shared cluster secret
	dynalite        *child   // nil with -dynamodb-endpoint
	relays          []*child // relay i listens on urls[i]
	urls            []string
	db              *dynamodb.Client
}

// startCluster starts dynalite (or uses -dynamodb-endpoint) and `relays`
// relay processes with relayArgs, the first of which creates the table.
func startCluster(tmp, relayBin string, relays int, relayArgs []string) (*clusterRun, error) {
	c := &clusterRun{endpoint: *flagDynamoEnd, table: fmt.Sprintf("relayload-%d-%d", os.Getpid(), time.Now().Unix())}
	if c.endpoint == "" {
		var err error
		if c.dynalite, c.endpoint, err = startDynalite(); err != nil {
			return nil, err
		}
		logf("dynalite listening on %s", c.endpoint)
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	c.secret = base64.StdEncoding.EncodeToString(key)
	keyID, secretKey, token := awsCredentials()
	c.db = dynamodb.NewFromConfig(aws.Config{
		Region:       region,
		Credentials:  credentials.NewStaticCredentialsProvider(keyID, secretKey, token),
		BaseEndpoint: aws.String(c.endpoint),
	})

	// The secret goes in the environment, never on a command line (the
	// relay removes it from its own environment once read). Credentials
	// are only made up when the caller has none: dynalite and DynamoDB
	// Local accept any.
	extra := []string{"RELAY_CLUSTER_SECRET=" + c.secret}
	if os.Getenv("AWS_ACCESS_KEY_ID") == "" {
		extra = append(extra, "AWS_ACCESS_KEY_ID="+keyID, "AWS_SECRET_ACCESS_KEY="+secretKey, "AWS_EC2_METADATA_DISABLED=true")
	}
	env := relayEnviron(extra...)
	for i := range relays {
		f := filepath.Join(tmp, fmt.Sprintf("relay%d.url", i))
		args := []string{"serve", "--listen", "127.0.0.1:0", "--addr-file", f,
			"--store", "dynamodb", "--dynamodb-endpoint", c.endpoint, "--region", region, "--dynamodb-table", c.table,
			"--cluster-listen", "127.0.0.1:0"}
		if i == 0 {
			args = append(args, "--dynamodb-create-table")
		}
		p, url, err := startServer(f, env, relayBin, append(args, relayArgs...)...)
		if err != nil {
			c.cleanup()
			return nil, err
		}
		c.relays, c.urls = append(c.relays, p), append(c.urls, url)
	}
	return c, nil
}

// cleanup stops every server and, on an endpoint that outlives the run,
// deletes the table.
func (c *clusterRun) cleanup() {
	stopChildren()
	if c.dynalite == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := c.db.DeleteTable(ctx, &dynamodb.DeleteTableInput{TableName: aws.String(c.table)}); err != nil {
			logf("deleting table %s: %v", c.table, err)
		}
	}
}

// awsCredentials returns the caller's credentials from the environment, or
// made-up ones for a local endpoint.
func awsCredentials() (keyID, secret, token string) {
	if id := os.Getenv("AWS_ACCESS_KEY_ID"); id != "" {
		return id, os.Getenv("AWS_SECRET_ACCESS_KEY"), os.Getenv("AWS_SESSION_TOKEN")
	}
	return "relayload", "relayload", ""
}

// verify checks that the sessions are really held: the relays report 2n open
// websockets between them, and the table holds n joined sessions whose
// initiator and joiner were accepted by different relays (read from the
// authenticated owner in each connection id). It returns what it found, or
// an error saying what is missing.
func (c *clusterRun) verify(n int) (string, error) {
	var open []string
	var total float64
	for _, u := range c.urls {
		v := sumMetric([]string{u}, "relay_connections_open")
		open = append(open, strconv.FormatFloat(v, 'f', 0, 64))
		total += v
	}
	items, joined, crossed, err := c.scan()
	if err != nil {
		return "", fmt.Errorf("reading table %s: %w", c.table, err)
	}
	msg := fmt.Sprintf("held: relay_connections_open %s = %.0f (want %d); table: %d sessions, %d joined, %d with initiator and joiner on different relays (want %d)",
		strings.Join(open, " + "), total, 2*n, items, joined, crossed, n)
	if int(total) != 2*n || items != n || joined != n || crossed != n {
		return "", errors.New("sessions not held as expected: " + msg)
	}
	return msg, nil
}

// scan counts the table's sessions, those joined, and those whose two peers
// are on different relays.
func (c *clusterRun) scan() (items, joined, crossed int, err error) {
	// A Node of the same cluster can authenticate the connection ids and
	// name the relay that minted each; its own address is never used.
	node, err := cluster.New(cluster.Config{Secret: []byte(c.secret), AdvertiseURL: "http://127.0.0.1:1"})
	if err != nil {
		return 0, 0, 0, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	pages := dynamodb.NewScanPaginator(c.db, &dynamodb.ScanInput{
		TableName:                aws.String(c.table),
		ConsistentRead:           aws.Bool(true),
		ProjectionExpression:     aws.String("#i, #j"),
		ExpressionAttributeNames: map[string]string{"#i": dynamostore.AttrInitiator, "#j": dynamostore.AttrJoiner},
	})
	for pages.HasMorePages() {
		out, err := pages.NextPage(ctx)
		if err != nil {
			return 0, 0, 0, err
		}
		for _, it := range out.Items {
			items++
			ini, _ := it[dynamostore.AttrInitiator].(*types.AttributeValueMemberS)
			joi, ok := it[dynamostore.AttrJoiner].(*types.AttributeValueMemberS)
			if !ok || ini == nil {
				continue
			}
			joined++
			a, errA := node.Owner(ini.Value)
			b, errB := node.Owner(joi.Value)
			if errA == nil && errB == nil && a != b {
				crossed++
			}
		}
	}
	return items, joined, crossed, nil
}

// startDynalite runs dynalite in memory on a free loopback port, with the
// command internal/dynalite uses for the tests, and returns its endpoint.
func startDynalite() (*child, string, error) {
	node, err := exec.LookPath("node")
	if err != nil {
		return nil, "", errors.New("cluster mode needs node to run dynalite (apt-get install nodejs), or -dynamodb-endpoint")
	}
	script := *flagDynalite
	if script == "" {
		if script, err = findDynalite(); err != nil {
			return nil, "", err
		}
	}
	// Picking a free port and handing it to another process is racy; a
	// clash shows as an early exit, so try a few.
	for range 3 {
		port, err := dynalite.FreePort()
		if err != nil {
			return nil, "", err
		}
		cmd := dynalite.Command(node, script, port)
		ready := &markWriter{mark: []byte("Dynalite listening"), seen: make(chan struct{})}
		cmd.Stdout, cmd.Stderr = ready, os.Stderr
		p, err := startChild(cmd)
		if err != nil {
			return nil, "", err
		}
		p.backing = true
		select {
		case <-ready.seen:
			return p, "http://127.0.0.1:" + strconv.Itoa(port), nil
		case <-p.exited:
		case <-time.After(30 * time.Second):
			p.stop()
		}
	}
	return nil, "", errors.New("dynalite did not start")
}

// findDynalite looks for tools/node_modules/dynalite/cli.js in the module
// this is run from (`make tools` installs it).
func findDynalite() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			script := filepath.Join(dir, "tools", "node_modules", "dynalite", "cli.js")
			if _, err := os.Stat(script); err != nil {
				return "", fmt.Errorf("dynalite is not installed (run `make tools`, or pass -dynalite or -dynamodb-endpoint): %w", err)
			}
			return script, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("not inside the farsign module: pass -dynalite or -dynamodb-endpoint")
		}
		dir = parent
	}
}

// markWriter closes seen once the output written to it contains mark.
// os/exec writes a child's output from one goroutine.
type markWriter struct {
	mark, tail []byte
	seen       chan struct{}
	once       sync.Once
}

func (w *markWriter) Write(p []byte) (int, error) {
	w.tail = append(w.tail, p...)
	if bytes.Contains(w.tail, w.mark) {
		w.once.Do(func() { close(w.seen) })
	}
	if len(w.tail) > len(w.mark) {
		w.tail = w.tail[len(w.tail)-len(w.mark):]
	}
	return len(p), nil
}

// reportCluster is the cluster-mode report: sums over the relay processes
// against sums over as many echo servers holding as many connections each,
// dynalite apart.
func (r *runResult) reportCluster(n, workers, relays int, ownDynalite bool) string {
	pe, pf, pw, ps := pct(r.light.B), pct(r.light.A), pct(r.light.C), pct(r.light.D)
	qe, qf := pct(r.fullEcho), pct(r.fullRelay)
	relayMsgs, echoMsgs := len(r.fullRelay), len(r.fullEcho)
	relayRate, echoRate := float64(relayMsgs)/r.relayWall.Seconds(), float64(echoMsgs)/r.echoWall.Seconds()
	relayPer, echoPer := r.relayCPU/time.Duration(relayMsgs), r.echoCPU/time.Duration(echoMsgs)
	heldRelay, heldEcho := sum(r.heldRelay), sum(r.heldEcho)
	peakRelay, peakEcho := sum(r.peakRelay), sum(r.peakEcho)
	var b strings.Builder
	fmt.Fprintf(&b, "relayload: %d sessions held across %d relay processes (%d relay connections, each session's two peers on different relays; %d echo servers hold %d), %d-byte messages, %d CPUs, %d client processes\n\n",
		n, relays, 2*n, relays, 2*n, *flagSize, numCPU(), workers)
	fmt.Fprintf(&b, "| measure | %d relays (sum) | %d echo servers (sum) | relays / echo |\n|---|---|---|---|\n", relays, relays)
	fmt.Fprintf(&b, "| RSS at start | %s | %s | |\n", mibSum(r.baseRelay), mibSum(r.baseEcho))
	fmt.Fprintf(&b, "| RSS holding %d sessions / %d echo connections | %s | %s | %.2f |\n", n, 2*n, mibSum(r.heldRelay), mibSum(r.heldEcho), float64(heldRelay)/float64(heldEcho))
	fmt.Fprintf(&b, "| peak RSS (VmHWM of each process, summed), whole run | %s | %s | %.2f |\n", mibSum(r.peakRelay), mibSum(r.peakEcho), float64(peakRelay)/float64(peakEcho))
	if ownDynalite {
		fmt.Fprintf(&b, "| dynalite (DynamoDB stand-in) RSS at start / holding / peak | %s / %s / %s | | |\n", mib(r.dynBase), mib(r.dynHeld), mib(r.dynPeak))
	}
	fmt.Fprintf(&b, "| light load (%d client, batch %d) round trip p50 | %s | %s | %.2f |\n", *flagConcurrency, *flagBatch, us(pf.p50), us(pe.p50), ratio(pf.p50, pe.p50))
	fmt.Fprintf(&b, "| light load round trip p99 | %s | %s | %.2f |\n", us(pf.p99), us(pe.p99), ratio(pf.p99, pe.p99))
	fmt.Fprintf(&b, "| light load p50 / p99, one relay process (memory store) | %s / %s | %s / %s | %.2f / %.2f |\n", us(ps.p50), us(ps.p99), us(pe.p50), us(pe.p99), ratio(ps.p50, pe.p50), ratio(ps.p99, pe.p99))
	fmt.Fprintf(&b, "| light load p50, cluster / one relay process | | | %.2f |\n", ratio(pf.p50, ps.p50))
	fmt.Fprintf(&b, "| light load p50, forwarder floor (same frames, no relay logic) | %s | %s | %.2f |\n", us(pw.p50), us(pe.p50), ratio(pw.p50, pe.p50))
	fmt.Fprintf(&b, "| full load (%s) messages/s | %.0f | %.0f | %.2f |\n", fullLabel(), relayRate, echoRate, relayRate/echoRate)
	fmt.Fprintf(&b, "| full load server CPU per message | %s | %s | %.2f |\n", us(relayPer), us(echoPer), ratio(relayPer, echoPer))
	if ownDynalite {
		fmt.Fprintf(&b, "| full load dynalite CPU per message | %s | | |\n", us(r.dynCPU/time.Duration(relayMsgs)))
	}
	fmt.Fprintf(&b, "| full load round trip p50 / p99 | %s / %s | %s / %s | %.2f / %.2f |\n", us(qf.p50), us(qf.p99), us(qe.p50), us(qe.p99), ratio(qf.p50, qe.p50), ratio(qf.p99, qe.p99))
	fmt.Fprintf(&b, "\nset up in %v; %s\n", r.setup.Round(time.Millisecond), r.check)
	fmt.Fprintf(&b, "full load: %d messages, %.0f delivered from one relay process to another; %d of %d sessions lost", relayMsgs, r.deliveries, r.lost, n)
	if r.lost > 0 {
		fmt.Fprintf(&b, " (the first: %s)", r.lostWhy)
	}
	b.WriteString("\n")
	fmt.Fprintf(&b, "relays while holding: %s; after: %s\n", r.held, r.after)
	return b.String()
}
