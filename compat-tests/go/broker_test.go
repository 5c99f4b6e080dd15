// Package compat drives the real oxbow binary with franz-go.
package compat

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// broker is the real oxbow binary ($OXBOW_BIN, else ../../target/debug/oxbow) on an ephemeral
// port and a temporary data dir.
type broker struct {
	cmd       *exec.Cmd
	bootstrap string
}

func startBroker(t *testing.T) *broker {
	t.Helper()
	bin := os.Getenv("OXBOW_BIN")
	if bin == "" {
		bin, _ = filepath.Abs("../../target/debug/oxbow")
	}
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("oxbow binary missing at %s: cargo build -p oxbow-broker", bin)
	}
	dir := t.TempDir()
	cmd := exec.Command(bin, "serve",
		"--override", "listeners=PLAINTEXT://127.0.0.1:0",
		"--override", "log.dirs="+dir,
		"--override", "group.initial.rebalance.delay.ms=0")
	stderr, err := os.Create(filepath.Join(dir, "oxbow.stderr"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, _ := bufio.NewReader(out).ReadString('\n')
	const prefix = "oxbow ready PLAINTEXT://"
	if !strings.HasPrefix(line, prefix) {
		_ = cmd.Process.Kill()
		t.Fatalf("broker not ready: %q", line)
	}
	b := &broker{cmd: cmd, bootstrap: strings.Fields(strings.TrimPrefix(line, prefix))[0]}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	return b
}
