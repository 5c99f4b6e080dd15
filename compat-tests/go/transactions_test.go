package compat

import (
	"context"
	"errors"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

func txnAdmin(t *testing.T, b *broker) *kadm.Client {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.bootstrap))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return kadm.NewClient(cl)
}

func txnCreateTopics(t *testing.T, adm *kadm.Client, partitions int32, topics ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	res, err := adm.CreateTopics(ctx, partitions, 1, nil, topics...)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		if r.Err != nil {
			t.Fatalf("create topic %s: %v", r.Topic, r.Err)
		}
	}
}

// txnRead reads every partition of topic from the start with the given isolation level until
// want records arrived, then one more second so that records beyond those expected show up too.
// It returns the values of each partition in offset order.
func txnRead(t *testing.T, b *broker, topic string, partitions int32, readCommitted bool, want int) map[int32][]string {
	t.Helper()
	parts := map[int32]kgo.Offset{}
	for p := int32(0); p < partitions; p++ {
		parts[p] = kgo.NewOffset().AtStart()
	}
	iso, name := kgo.ReadUncommitted(), "read_uncommitted"
	if readCommitted {
		iso, name = kgo.ReadCommitted(), "read_committed"
	}
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(b.bootstrap),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: parts}),
		kgo.FetchIsolationLevel(iso),
	)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	out := map[int32][]string{}
	lastOffset := map[int32]int64{}
	n := 0
	deadline := time.Now().Add(30 * time.Second)
	var graceEnd time.Time
	for {
		now := time.Now()
		if n >= want {
			if graceEnd.IsZero() {
				graceEnd = now.Add(time.Second)
			} else if now.After(graceEnd) {
				break
			}
		} else if now.After(deadline) {
			t.Fatalf("%s consumer of %s: %d records after 30s, expected %d", name, topic, n, want)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		fetches := cl.PollFetches(ctx)
		cancel()
		fetches.EachError(func(tp string, p int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Logf("%s fetch error %s/%d: %v", name, tp, p, err)
			}
		})
		fetches.EachRecord(func(r *kgo.Record) {
			if last, ok := lastOffset[r.Partition]; ok && r.Offset <= last {
				t.Errorf("%s partition %d: offset %d after %d", name, r.Partition, r.Offset, last)
			}
			lastOffset[r.Partition] = r.Offset
			out[r.Partition] = append(out[r.Partition], string(r.Value))
			n++
		})
	}
	return out
}

func sameStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// A plain transactional producer: committed transactions and non-transactional records are
// visible read_committed, aborted ones only read_uncommitted; an open transaction holds the
// last stable offset at its first offset until it commits.
func TestFranzGoTransactionalProducerCommitAbort(t *testing.T) {
	b := startBroker(t)
	adm := txnAdmin(t, b)
	const topic = "franz-txn"
	txnCreateTopics(t, adm, 2, topic)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	txn, err := kgo.NewClient(
		kgo.SeedBrokers(b.bootstrap),
		kgo.TransactionalID("franz-txn-producer"),
		kgo.TransactionTimeout(30*time.Second),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.WithLogger(kgo.BasicLogger(os.Stderr, kgo.LogLevelWarn, nil)),
	)
	if err != nil {
		t.Fatal(err)
	}
	defer txn.Close()
	plain, err := kgo.NewClient(kgo.SeedBrokers(b.bootstrap), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()

	order := map[int32][]string{}
	visible := map[string]bool{}
	// send produces n records alternating over the two partitions and waits for them; the
	// first offset written to each partition is returned.
	send := func(cl *kgo.Client, prefix string, n int) (vals []string, first map[int32]int64) {
		t.Helper()
		first = map[int32]int64{}
		recs := make([]*kgo.Record, n)
		for i := range recs {
			v := fmt.Sprintf("%s-%d", prefix, i)
			recs[i] = &kgo.Record{Topic: topic, Partition: int32(i % 2), Key: []byte(v), Value: []byte(v)}
		}
		pctx, pcancel := context.WithTimeout(ctx, 30*time.Second)
		defer pcancel()
		if err := cl.ProduceSync(pctx, recs...).FirstErr(); err != nil {
			t.Fatalf("produce %s: %v", prefix, err)
		}
		for _, r := range recs {
			order[r.Partition] = append(order[r.Partition], string(r.Value))
			vals = append(vals, string(r.Value))
			if _, ok := first[r.Partition]; !ok {
				first[r.Partition] = r.Offset
			}
		}
		return vals, first
	}
	for k := 0; k < 6; k++ {
		if err := txn.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		vt, _ := send(txn, fmt.Sprintf("t%d", k), 10)
		vp, _ := send(plain, fmt.Sprintf("p%d", k), 4)
		vt2, _ := send(txn, fmt.Sprintf("t%dx", k), 4)
		vt = append(vt, vt2...)
		commit := k%2 == 0
		ectx, ecancel := context.WithTimeout(ctx, 30*time.Second)
		err := txn.EndTransaction(ectx, kgo.TransactionEndTry(commit))
		ecancel()
		if err != nil {
			t.Fatalf("EndTransaction(commit=%v) of transaction %d: %v", commit, k, err)
		}
		for _, v := range vt {
			visible[v] = commit
		}
		for _, v := range vp {
			visible[v] = true
		}
	}
	countVisible := func() int {
		n := 0
		for _, vs := range order {
			for _, v := range vs {
				if visible[v] {
					n++
				}
			}
		}
		return n
	}
	check := func(stage string) {
		t.Helper()
		total := len(order[0]) + len(order[1])
		rc := txnRead(t, b, topic, 2, true, countVisible())
		ru := txnRead(t, b, topic, 2, false, total)
		for p := int32(0); p < 2; p++ {
			var want []string
			for _, v := range order[p] {
				if visible[v] {
					want = append(want, v)
				}
			}
			if !sameStrings(rc[p], want) {
				t.Errorf("%s: partition %d read_committed: expected the %d committed and non-transactional records in order, got %d: %v", stage, p, len(want), len(rc[p]), rc[p])
			}
			if !sameStrings(ru[p], order[p]) {
				t.Errorf("%s: partition %d read_uncommitted: expected all %d records in order (aborted too), got %d", stage, p, len(order[p]), len(ru[p]))
			}
		}
	}
	check("after 3 committed and 3 aborted transactions")

	// An open transaction: the LSO (ListOffsets read_committed) stays at its first offset.
	if err := txn.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	vo, firstOpen := send(txn, "open", 4)
	vl, _ := send(plain, "late", 2)
	lso, err := adm.ListCommittedOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	hwm, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	for p := int32(0); p < 2; p++ {
		l, _ := lso.Lookup(topic, p)
		h, _ := hwm.Lookup(topic, p)
		if l.Err != nil || l.Offset != firstOpen[p] {
			t.Errorf("partition %d: with a transaction open at offset %d the last stable offset should be %d, got %d (%v)", p, firstOpen[p], firstOpen[p], l.Offset, l.Err)
		}
		if h.Err != nil || h.Offset != firstOpen[p]+3 {
			t.Errorf("partition %d: high watermark should be %d (2 open + 1 later record), got %d (%v)", p, firstOpen[p]+3, h.Offset, h.Err)
		}
	}
	for _, v := range append(append([]string{}, vo...), vl...) {
		visible[v] = false
	}
	check("with a transaction open")
	ectx, ecancel := context.WithTimeout(ctx, 30*time.Second)
	err = txn.EndTransaction(ectx, kgo.TryCommit)
	ecancel()
	if err != nil {
		t.Fatalf("commit of the open transaction: %v", err)
	}
	for _, v := range append(vo, vl...) {
		visible[v] = true
	}
	check("after the open transaction committed")
	lso, err = adm.ListCommittedOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	hwm, err = adm.ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	for p := int32(0); p < 2; p++ {
		l, _ := lso.Lookup(topic, p)
		h, _ := hwm.Lookup(topic, p)
		if l.Offset != h.Offset || h.Offset != firstOpen[p]+4 {
			t.Errorf("partition %d: after the commit LSO and HWM should both be %d (3 records + marker), got LSO %d HWM %d", p, firstOpen[p]+4, l.Offset, h.Offset)
		}
	}
}

// GroupTransactSession consume-transform-produce: every input record lands in the output exactly
// once (read_committed) despite forced aborts and a restart of the session, and the group's
// committed offsets are the input's end offsets.
func TestFranzGoGroupTransactSessionExactlyOnce(t *testing.T) {
	b := startBroker(t)
	adm := txnAdmin(t, b)
	const in, out, group, txnID = "eos-in", "eos-out", "eos-group", "eos-copier"
	const n = 3000
	txnCreateTopics(t, adm, 3, in, out)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()

	inputs := map[int32][]string{}
	{
		cl, err := kgo.NewClient(kgo.SeedBrokers(b.bootstrap), kgo.RecordPartitioner(kgo.ManualPartitioner()))
		if err != nil {
			t.Fatal(err)
		}
		recs := make([]*kgo.Record, n)
		for i := range recs {
			v := fmt.Sprintf("in-%05d", i)
			p := int32(i % 3)
			recs[i] = &kgo.Record{Topic: in, Partition: p, Key: []byte(v), Value: []byte(v)}
			inputs[p] = append(inputs[p], v)
		}
		if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
		cl.Close()
	}

	newSession := func() *kgo.GroupTransactSession {
		s, err := kgo.NewGroupTransactSession(
			kgo.SeedBrokers(b.bootstrap),
			kgo.TransactionalID(txnID),
			kgo.TransactionTimeout(20*time.Second),
			kgo.ConsumerGroup(group),
			kgo.ConsumeTopics(in),
			kgo.FetchIsolationLevel(kgo.ReadCommitted()),
			kgo.RequireStableFetchOffsets(),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
			kgo.RecordPartitioner(kgo.ManualPartitioner()),
			kgo.SessionTimeout(10*time.Second),
			kgo.HeartbeatInterval(500*time.Millisecond),
			kgo.WithLogger(kgo.BasicLogger(os.Stderr, kgo.LogLevelWarn, nil)),
		)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}

	sess := newSession()
	committedRecs, abortedRecs, txns, forcedAborts := 0, 0, 0, 0
	restarted := false
	for committedRecs < n {
		if ctx.Err() != nil {
			sess.Close()
			t.Fatalf("copied %d of %d records in committed transactions before the deadline (%d transactions, %d aborted records)", committedRecs, n, txns, abortedRecs)
		}
		pctx, pcancel := context.WithTimeout(ctx, 2*time.Second)
		fetches := sess.PollRecords(pctx, 100)
		pcancel()
		if fetches.IsClientClosed() {
			t.Fatal("session client closed")
		}
		fetches.EachError(func(tp string, p int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
				t.Logf("fetch error %s/%d: %v", tp, p, err)
			}
		})
		recs := fetches.Records()
		if len(recs) == 0 {
			continue
		}
		if err := sess.Begin(); err != nil {
			t.Fatalf("Begin: %v", err)
		}
		outRecs := make([]*kgo.Record, len(recs))
		for i, r := range recs {
			outRecs[i] = &kgo.Record{Topic: out, Partition: r.Partition, Key: r.Key, Value: append([]byte("copy:"), r.Value...)}
		}
		pctx, pcancel = context.WithTimeout(ctx, 30*time.Second)
		err := sess.ProduceSync(pctx, outRecs...).FirstErr()
		pcancel()
		if err != nil {
			t.Fatalf("transactional produce: %v", err)
		}
		txns++
		end := kgo.TryCommit
		if txns == 3 || txns == 9 || txns == 20 {
			end = kgo.TryAbort
			forcedAborts++
		}
		ectx, ecancel := context.WithTimeout(ctx, 60*time.Second)
		committed, err := sess.End(ectx, end)
		ecancel()
		if err != nil {
			t.Fatalf("End(commit=%v) of transaction %d: %v", end, txns, err)
		}
		if end == kgo.TryAbort && committed {
			t.Fatalf("End(TryAbort) reported a commit")
		}
		if committed {
			committedRecs += len(recs)
		} else {
			abortedRecs += len(recs)
		}
		if !restarted && committedRecs >= n/2 {
			sess.Close() // leaves the group; the new session with the same transactional id carries on
			sess = newSession()
			restarted = true
		}
	}
	sess.Close()
	if committedRecs != n {
		t.Errorf("committed transactions carried %d records, want exactly %d", committedRecs, n)
	}
	t.Logf("%d transactions, %d forced aborts, %d records aborted", txns, forcedAborts, abortedRecs)
	if forcedAborts == 0 || !restarted {
		t.Fatalf("the run should include forced aborts (%d) and a restart (%v)", forcedAborts, restarted)
	}

	rc := txnRead(t, b, out, 3, true, n)
	for p := int32(0); p < 3; p++ {
		want := make([]string, len(inputs[p]))
		for i, v := range inputs[p] {
			want[i] = "copy:" + v
		}
		if !sameStrings(rc[p], want) {
			seen := map[string]int{}
			dups := 0
			for _, v := range rc[p] {
				seen[v]++
				if seen[v] == 2 {
					dups++
				}
			}
			t.Errorf("partition %d: read_committed output should hold the %d input records once each in order, got %d (%d duplicated)", p, len(want), len(rc[p]), dups)
		}
	}
	ru := txnRead(t, b, out, 3, false, n+abortedRecs)
	total := len(ru[0]) + len(ru[1]) + len(ru[2])
	if total != n+abortedRecs {
		t.Errorf("read_uncommitted output should hold the %d committed plus the %d aborted records, got %d", n, abortedRecs, total)
	}

	offsets, err := adm.FetchOffsets(ctx, group)
	if err != nil {
		t.Fatal(err)
	}
	ends, err := adm.ListEndOffsets(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	ends.Each(func(o kadm.ListedOffset) {
		c, ok := offsets.Lookup(in, o.Partition)
		if !ok || c.Err != nil || c.At != o.Offset {
			t.Errorf("partition %d: group committed offset %v (found %v), want the input end offset %d", o.Partition, c.At, ok, o.Offset)
		}
	})
}
