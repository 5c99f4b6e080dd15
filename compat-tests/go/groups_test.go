package compat

import (
	"context"
	"fmt"
	"os"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// member consumes in a group and commits what it has seen before giving partitions up, so the
// group as a whole sees every record once.
func member(t *testing.T, b *broker, group, topic string, seen *sync.Map, count *int64, mu *sync.Mutex) (*kgo.Client, context.CancelFunc, *sync.WaitGroup) {
	t.Helper()
	var cl *kgo.Client
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(b.bootstrap),
		kgo.ConsumerGroup(group),
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.DisableAutoCommit(),
		kgo.Balancers(kgo.CooperativeStickyBalancer()),
		kgo.SessionTimeout(10*time.Second),
		kgo.HeartbeatInterval(500*time.Millisecond),
		kgo.WithLogger(kgo.BasicLogger(os.Stderr, kgo.LogLevelWarn, nil)),
		kgo.OnPartitionsRevoked(func(ctx context.Context, c *kgo.Client, _ map[string][]int32) {
			_ = c.CommitUncommittedOffsets(ctx)
		}),
	)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for ctx.Err() == nil {
			fetches := cl.PollFetches(ctx)
			fetches.EachRecord(func(r *kgo.Record) {
				if _, dup := seen.LoadOrStore(string(r.Value), true); dup {
					t.Errorf("record %s seen twice", r.Value)
				}
				mu.Lock()
				*count++
				mu.Unlock()
			})
			_ = cl.CommitUncommittedOffsets(context.Background())
		}
	}()
	return cl, cancel, &wg
}

func produce(t *testing.T, b *broker, topic, prefix string, n int) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.bootstrap))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	recs := make([]*kgo.Record, n)
	for i := range recs {
		v := fmt.Sprintf("%s%d", prefix, i)
		recs[i] = &kgo.Record{Topic: topic, Key: []byte(v), Value: []byte(v)}
	}
	if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

func waitFor(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}

func TestFranzGoGroupJoinLeaveCommitResume(t *testing.T) {
	b := startBroker(t)
	ctx := context.Background()
	admCl, err := kgo.NewClient(kgo.SeedBrokers(b.bootstrap))
	if err != nil {
		t.Fatal(err)
	}
	defer admCl.Close()
	adm := kadm.NewClient(admCl)
	if _, err := adm.CreateTopic(ctx, 6, 1, nil, "franz"); err != nil {
		t.Fatal(err)
	}
	produce(t, b, "franz", "a-", 1200)

	var seen sync.Map
	var count int64
	var mu sync.Mutex
	get := func() int64 { mu.Lock(); defer mu.Unlock(); return count }

	c1, stop1, wg1 := member(t, b, "franz-g", "franz", &seen, &count, &mu)
	waitFor(t, "first member to consume", 30*time.Second, func() bool { return get() > 100 })
	c2, stop2, wg2 := member(t, b, "franz-g", "franz", &seen, &count, &mu)
	c3, stop3, wg3 := member(t, b, "franz-g", "franz", &seen, &count, &mu)
	waitFor(t, "three members in the group", 30*time.Second, func() bool {
		groups, err := adm.DescribeGroups(ctx, "franz-g")
		if err != nil {
			return false
		}
		g := groups["franz-g"]
		return g.State == "Stable" && len(g.Members) == 3
	})
	produce(t, b, "franz", "b-", 1200)
	stop2()
	wg2.Wait()
	c2.Close() // leaves the group
	produce(t, b, "franz", "c-", 1200)
	waitFor(t, "every record", 60*time.Second, func() bool {
		if get() != 3600 {
			groups, _ := adm.DescribeGroups(ctx, "franz-g")
			g := groups["franz-g"]
			t.Logf("consumed %d, group %s with %d members", get(), g.State, len(g.Members))
			time.Sleep(2 * time.Second)
		}
		return get() == 3600
	})
	for _, s := range []struct {
		stop context.CancelFunc
		wg   *sync.WaitGroup
		cl   *kgo.Client
	}{{stop1, wg1, c1}, {stop3, wg3, c3}} {
		s.stop()
		s.wg.Wait()
		s.cl.Close()
	}
	if get() != 3600 {
		t.Fatalf("group consumed %d records, want 3600", get())
	}

	// Every partition's committed offset is its end: a new member resumes with nothing to read.
	offsets, err := adm.FetchOffsets(ctx, "franz-g")
	if err != nil {
		t.Fatal(err)
	}
	ends, err := adm.ListEndOffsets(ctx, "franz")
	if err != nil {
		t.Fatal(err)
	}
	var parts []int32
	ends.Each(func(o kadm.ListedOffset) {
		parts = append(parts, o.Partition)
		c, ok := offsets.Lookup("franz", o.Partition)
		if !ok || c.At != o.Offset {
			t.Errorf("partition %d: committed %v, end %d", o.Partition, c.At, o.Offset)
		}
	})
	sort.Slice(parts, func(i, j int) bool { return parts[i] < parts[j] })
	if len(parts) != 6 {
		t.Fatalf("partitions %v", parts)
	}
}
