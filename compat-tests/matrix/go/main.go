// The Go runners of the compatibility matrix: franz-go, sarama (at a given config.Version) and
// kafka-go, one binary: matrix -client franz-go|sarama|kafka-go [-sarama-version 2.8.0.0|max].
// run.sh starts a fresh broker and passes OXBOW_BOOTSTRAP and MATRIX_OUT (JSON lines, one per
// scenario: {"client","version","scenario","result","note"}).
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"runtime/debug"
	"sort"
	"strings"
	"time"
)

var (
	bootstrap = envOr("OXBOW_BOOTSTRAP", "127.0.0.1:9092")
	runID     = fmt.Sprint(time.Now().UnixMilli() % 10_000_000)
	codecs    = []string{"none", "gzip", "snappy", "lz4", "zstd"}
	out       *os.File
	client    string
	version   string
)

func envOr(k, d string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return d
}

// errNA marks a cell the client itself cannot do; the message says why.
type errNA struct{ why string }

func (e errNA) Error() string { return e.why }

func na(why string) error { return errNA{why} }

func topic(name string) string { return "mx-" + name + "-" + runID }

func emit(scenario, result, note string) {
	b, _ := json.Marshal(map[string]string{"client": client, "version": version, "scenario": scenario,
		"result": result, "note": note})
	fmt.Println(string(b))
	if out != nil {
		out.Write(append(b, '\n'))
	}
}

// run runs one scenario with a time limit; a panic or an error is a failed cell.
func run(scenario string, fn func() error) {
	start := time.Now()
	done := make(chan error, 1)
	go func() {
		defer func() {
			if r := recover(); r != nil {
				done <- fmt.Errorf("panic: %v\n%s", r, debug.Stack())
			}
		}()
		done <- fn()
	}()
	var err error
	select {
	case err = <-done:
	case <-time.After(120 * time.Second):
		err = errors.New("timed out after 120s")
	}
	var n errNA
	switch {
	case err == nil:
		emit(scenario, "pass", "")
	case errors.As(err, &n):
		emit(scenario, "n/a", n.why)
	default:
		note := err.Error()
		fmt.Fprintf(os.Stderr, "%s %s %s: %s\n", client, version, scenario, note)
		if len(note) > 400 {
			note = note[:400]
		}
		emit(scenario, "fail", note)
	}
	fmt.Fprintf(os.Stderr, "  [%s %s] %s: %.1fs\n", client, version, scenario, time.Since(start).Seconds())
}

// rec is a record as the scenarios compare them.
type rec struct {
	Key, Value string
	Headers    []string // k, v, k, v ...
	Partition  int32
	Offset     int64
	Time       time.Time
}

func records(n int, tag string) []rec {
	rs := make([]rec, n)
	for i := range rs {
		rs[i] = rec{Key: fmt.Sprintf("k%d", i%4), Value: fmt.Sprintf("%s-%d", tag, i),
			Headers: []string{"h", "1", "h", "2", "bin", string([]byte{0, 255, byte(i)})}}
	}
	return rs
}

// sameRecords compares key, value and headers (in order) regardless of partition interleaving.
func sameRecords(got, want []rec) error {
	if len(got) != len(want) {
		return fmt.Errorf("got %d records, want %d", len(got), len(want))
	}
	byValue := map[string]rec{}
	for _, r := range got {
		byValue[r.Value] = r
	}
	for _, w := range want {
		g, ok := byValue[w.Value]
		if !ok {
			return fmt.Errorf("missing record %q", w.Value)
		}
		if g.Key != w.Key || strings.Join(g.Headers, "\x00") != strings.Join(w.Headers, "\x00") {
			return fmt.Errorf("record %q: key %q headers %q, want %q %q", w.Value, g.Key, g.Headers, w.Key, w.Headers)
		}
	}
	return nil
}

// checkKeyed: every key in one partition, more than one partition used, per-key order kept.
func checkKeyed(got []rec, n int) error {
	if len(got) != n {
		return fmt.Errorf("consumed %d of %d", len(got), n)
	}
	parts := map[string]map[int32]bool{}
	used := map[int32]bool{}
	sort.Slice(got, func(i, j int) bool { return got[i].Offset < got[j].Offset })
	last := map[string]int{}
	for _, r := range got {
		if parts[r.Key] == nil {
			parts[r.Key] = map[int32]bool{}
		}
		parts[r.Key][r.Partition] = true
		used[r.Partition] = true
		var i int
		fmt.Sscanf(r.Value, "%d", &i)
		if l, ok := last[r.Key]; ok && i < l {
			return fmt.Errorf("key %s out of order: %d after %d", r.Key, i, l)
		}
		last[r.Key] = i
	}
	for k, p := range parts {
		if len(p) != 1 {
			return fmt.Errorf("key %s in partitions %v", k, p)
		}
	}
	if len(used) < 2 {
		return fmt.Errorf("all keys in one partition")
	}
	return nil
}

func moduleVersion(path string) string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			if d.Path == path {
				return d.Version
			}
		}
	}
	return "unknown"
}

type runner interface {
	metadataAutocreate() error
	codec(c string) error
	keyed() error
	seekOffset() error
	seekTimestamp() error
	group() error
	idempotent() error
	adminTopics() error
	adminConfigs() error
	groupAdmin() error
	transactions() error
}

func main() {
	flag.StringVar(&client, "client", "", "franz-go | sarama | kafka-go")
	saramaVersion := flag.String("sarama-version", "", "sarama config.Version: 2.0.0, 2.8.0 or max")
	flag.Parse()
	if p := os.Getenv("MATRIX_OUT"); p != "" {
		f, err := os.OpenFile(p, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		if err != nil {
			panic(err)
		}
		out = f
	}
	var r runner
	switch client {
	case "franz-go":
		version = moduleVersion("github.com/twmb/franz-go")
		r = newFranz()
	case "sarama":
		var err error
		r, version, err = newSarama(*saramaVersion)
		if err != nil {
			panic(err)
		}
	case "kafka-go":
		version = moduleVersion("github.com/segmentio/kafka-go")
		r = newKafkaGo()
	default:
		fmt.Fprintln(os.Stderr, "unknown -client", client)
		os.Exit(2)
	}
	if v := os.Getenv("MATRIX_VERSION"); v != "" {
		version = v
	}
	run("metadata_autocreate", r.metadataAutocreate)
	for _, c := range codecs {
		c := c
		run("codec_"+c, func() error { return r.codec(c) })
	}
	run("keyed_partitioning", r.keyed)
	run("seek_offset", r.seekOffset)
	run("seek_timestamp", r.seekTimestamp)
	run("group_rebalance_commit", r.group)
	run("idempotent_produce", r.idempotent)
	run("admin_topics", r.adminTopics)
	run("admin_configs", r.adminConfigs)
	run("group_admin", r.groupAdmin)
	run("transactions", r.transactions)
}
