package main

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

type franzRunner struct{}

func newFranz() runner { return franzRunner{} }

func fclient(opts ...kgo.Opt) (*kgo.Client, error) {
	return kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(bootstrap), kgo.AllowAutoTopicCreation(),
		kgo.FetchMaxWait(200 * time.Millisecond)}, opts...)...)
}

func toFranz(t string, rs []rec, partition int32, ts []time.Time) []*kgo.Record {
	out := make([]*kgo.Record, len(rs))
	for i, r := range rs {
		k := &kgo.Record{Topic: t, Key: []byte(r.Key), Value: []byte(r.Value), Partition: partition}
		for h := 0; h+1 < len(r.Headers); h += 2 {
			k.Headers = append(k.Headers, kgo.RecordHeader{Key: r.Headers[h], Value: []byte(r.Headers[h+1])})
		}
		if ts != nil {
			k.Timestamp = ts[i]
		}
		out[i] = k
	}
	return out
}

func fromFranz(k *kgo.Record) rec {
	r := rec{Key: string(k.Key), Value: string(k.Value), Partition: k.Partition, Offset: k.Offset, Time: k.Timestamp}
	for _, h := range k.Headers {
		r.Headers = append(r.Headers, h.Key, string(h.Value))
	}
	return r
}

func fproduce(t string, rs []rec, partition int32, ts []time.Time, opts ...kgo.Opt) error {
	if partition >= 0 {
		opts = append(opts, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	}
	cl, err := fclient(opts...)
	if err != nil {
		return err
	}
	defer cl.Close()
	return cl.ProduceSync(context.Background(), toFranz(t, rs, partition, ts)...).FirstErr()
}

func fpoll(cl *kgo.Client, n int) ([]rec, error) {
	var got []rec
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for len(got) < n {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return got, fmt.Errorf("got %d of %d records in 20s", len(got), n)
		}
		if errs := fs.Errors(); len(errs) > 0 {
			return got, fmt.Errorf("fetch: %v", errs[0].Err)
		}
		fs.EachRecord(func(r *kgo.Record) { got = append(got, fromFranz(r)) })
	}
	ctx2, cancel2 := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel2()
	cl.PollFetches(ctx2).EachRecord(func(r *kgo.Record) { got = append(got, fromFranz(r)) })
	return got, nil
}

func fconsume(t string, n int, opts ...kgo.Opt) ([]rec, error) {
	cl, err := fclient(append([]kgo.Opt{kgo.ConsumeTopics(t), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart())}, opts...)...)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	return fpoll(cl, n)
}

func fadmin() (*kadm.Client, *kgo.Client, error) {
	cl, err := fclient()
	if err != nil {
		return nil, nil, err
	}
	return kadm.NewClient(cl), cl, nil
}

var ctx = context.Background()

func (franzRunner) metadataAutocreate() error {
	t := topic("auto")
	if err := fproduce(t, records(1, "a"), -1, nil); err != nil {
		return err
	}
	a, cl, err := fadmin()
	if err != nil {
		return err
	}
	defer cl.Close()
	md, err := a.Metadata(ctx, t)
	if err != nil {
		return err
	}
	if len(md.Brokers) != 1 || len(md.Topics[t].Partitions) != 3 {
		return fmt.Errorf("brokers %d, partitions %d", len(md.Brokers), len(md.Topics[t].Partitions))
	}
	return nil
}

var franzCodecs = map[string]kgo.CompressionCodec{"none": kgo.NoCompression(), "gzip": kgo.GzipCompression(),
	"snappy": kgo.SnappyCompression(), "lz4": kgo.Lz4Compression(), "zstd": kgo.ZstdCompression()}

func (franzRunner) codec(c string) error {
	t := topic("codec-" + c)
	want := records(20, c)
	if err := fproduce(t, want, -1, nil, kgo.ProducerBatchCompression(franzCodecs[c])); err != nil {
		return err
	}
	got, err := fconsume(t, 20)
	if err != nil {
		return err
	}
	return sameRecords(got, want)
}

func (franzRunner) keyed() error {
	t := topic("keyed")
	if err := fproduce(t, keyedRecords(), -1, nil); err != nil {
		return err
	}
	got, err := fconsume(t, 36)
	if err != nil {
		return err
	}
	return checkKeyed(got, 36)
}

func (franzRunner) seekOffset() error {
	t := topic("seek")
	if err := fproduce(t, records(20, "s"), 0, nil); err != nil {
		return err
	}
	cl, err := fclient(kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{t: {0: kgo.NewOffset().At(7)}}))
	if err != nil {
		return err
	}
	defer cl.Close()
	got, err := fpoll(cl, 13)
	if err != nil {
		return err
	}
	if len(got) != 13 || got[0].Offset != 7 || got[0].Value != "s-7" {
		return fmt.Errorf("from 7: %d records, first %d", len(got), got[0].Offset)
	}
	a := kadm.NewClient(cl)
	end, err := a.ListEndOffsets(ctx, t)
	if err != nil {
		return err
	}
	start, err := a.ListStartOffsets(ctx, t)
	if err != nil {
		return err
	}
	if o, _ := end.Lookup(t, 0); o.Offset != 20 {
		return fmt.Errorf("end offset %d", o.Offset)
	}
	if o, _ := start.Lookup(t, 0); o.Offset != 0 {
		return fmt.Errorf("start offset %d", o.Offset)
	}
	return nil
}

func (franzRunner) seekTimestamp() error {
	t := topic("ts")
	rs, ts, base := timestamped()
	if err := fproduce(t, rs, 0, ts); err != nil {
		return err
	}
	a, cl, err := fadmin()
	if err != nil {
		return err
	}
	defer cl.Close()
	for probe, want := range map[time.Duration]int64{7500 * time.Millisecond: 8, -time.Second: 0, time.Minute: 20} {
		lo, err := a.ListOffsetsAfterMilli(ctx, base.Add(probe).UnixMilli(), t)
		if err != nil {
			return err
		}
		if o, _ := lo.Lookup(t, 0); o.Offset != want || o.Err != nil {
			return fmt.Errorf("offset after %v: %d %v, want %d", probe, o.Offset, o.Err, want)
		}
	}
	c, err := fclient(kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{t: {0: kgo.NewOffset().AfterMilli(base.Add(7500 * time.Millisecond).UnixMilli())}}))
	if err != nil {
		return err
	}
	defer c.Close()
	got, err := fpoll(c, 12)
	if err != nil {
		return err
	}
	if got[0].Value != "t-8" || !got[0].Time.Equal(ts[8]) {
		return fmt.Errorf("first after seek %q %v", got[0].Value, got[0].Time)
	}
	return nil
}

type franzMember struct {
	cl       *kgo.Client
	mu       sync.Mutex
	got      []rec
	assigned int
	done     chan struct{}
	cancel   func()
}

func franzJoin(g, t string) (*franzMember, error) {
	m := &franzMember{done: make(chan struct{})}
	cl, err := fclient(kgo.ConsumerGroup(g), kgo.ConsumeTopics(t), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.AutoCommitInterval(200*time.Millisecond), kgo.HeartbeatInterval(500*time.Millisecond),
		kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, a map[string][]int32) {
			m.mu.Lock()
			m.assigned += len(a[t])
			m.mu.Unlock()
		}),
		kgo.OnPartitionsRevoked(func(_ context.Context, _ *kgo.Client, r map[string][]int32) {
			m.mu.Lock()
			m.assigned -= len(r[t])
			m.mu.Unlock()
		}))
	if err != nil {
		return nil, err
	}
	m.cl = cl
	c, cancel := context.WithCancel(context.Background())
	m.cancel = cancel
	go func() {
		defer close(m.done)
		for c.Err() == nil {
			cl.PollFetches(c).EachRecord(func(r *kgo.Record) {
				m.mu.Lock()
				m.got = append(m.got, fromFranz(r))
				m.mu.Unlock()
			})
		}
	}()
	return m, nil
}

func (m *franzMember) snapshot() ([]rec, int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]rec(nil), m.got...), m.assigned
}

func (m *franzMember) close() error {
	m.cancel()
	<-m.done
	err := m.cl.CommitUncommittedOffsets(ctx)
	m.cl.Close()
	return err
}

func (franzRunner) group() error {
	t, g := topic("group"), topic("g")
	if err := fproduce(t, nil, -1, nil); err != nil {
		return err
	}
	a0, cl, err := fadmin()
	if err != nil {
		return err
	}
	_, _ = a0.CreateTopic(ctx, 3, 1, nil, t)
	cl.Close()
	a, err := franzJoin(g, t)
	if err != nil {
		return err
	}
	if err := waitFor("first member assigned 3", 30*time.Second, func() bool { _, n := a.snapshot(); return n == 3 }); err != nil {
		return err
	}
	b, err := franzJoin(g, t)
	if err != nil {
		return err
	}
	if err := waitFor("rebalance to 2 members", 30*time.Second, func() bool {
		_, na := a.snapshot()
		_, nb := b.snapshot()
		return na > 0 && nb > 0 && na+nb == 3
	}); err != nil {
		return err
	}
	want := records(30, "m")
	if err := fproduce(t, want, -1, nil); err != nil {
		return err
	}
	if err := waitFor("30 records", 30*time.Second, func() bool {
		ga, _ := a.snapshot()
		gb, _ := b.snapshot()
		return len(ga)+len(gb) >= 30
	}); err != nil {
		return err
	}
	time.Sleep(500 * time.Millisecond)
	ga, _ := a.snapshot()
	gb, _ := b.snapshot()
	if len(ga) == 0 || len(gb) == 0 {
		return fmt.Errorf("a member got nothing: %d/%d", len(ga), len(gb))
	}
	if err := expectValues(append(ga, gb...), want); err != nil {
		return err
	}
	if err := a.close(); err != nil {
		return err
	}
	if err := b.close(); err != nil {
		return err
	}
	more := records(10, "r")
	if err := fproduce(t, more, -1, nil); err != nil {
		return err
	}
	c, err := franzJoin(g, t)
	if err != nil {
		return err
	}
	defer c.close()
	_ = waitFor("resumed member reads 10", 30*time.Second, func() bool { r, _ := c.snapshot(); return len(r) >= 10 })
	time.Sleep(500 * time.Millisecond)
	gc, _ := c.snapshot()
	return expectValues(gc, more)
}

func (franzRunner) idempotent() error {
	t := topic("idem")
	want := records(30, "i")
	cl, err := fclient(kgo.RequiredAcks(kgo.AllISRAcks())) // franz-go is idempotent by default
	if err != nil {
		return err
	}
	for i := 0; i < 3; i++ {
		if err := cl.ProduceSync(ctx, toFranz(t, want[i*10:i*10+10], -1, nil)...).FirstErr(); err != nil {
			cl.Close()
			return err
		}
	}
	cl.Close()
	got, err := fconsume(t, 30)
	if err != nil {
		return err
	}
	return sameRecords(got, want)
}

func (franzRunner) adminTopics() error {
	a, cl, err := fadmin()
	if err != nil {
		return err
	}
	defer cl.Close()
	t := topic("admin")
	ret := "3600000"
	if r, err := a.CreateTopic(ctx, 2, 1, map[string]*string{"retention.ms": &ret}, t); err != nil || r.Err != nil {
		return fmt.Errorf("create: %v %v", err, r.Err)
	}
	if r, _ := a.CreateTopic(ctx, 2, 1, nil, t); r.Err == nil {
		return fmt.Errorf("creating it twice succeeded")
	}
	td, err := a.ListTopics(ctx, t)
	if err != nil || len(td[t].Partitions) != 2 {
		return fmt.Errorf("describe: %v %d partitions", err, len(td[t].Partitions))
	}
	if r, err := a.UpdatePartitions(ctx, 4, t); err != nil || r[t].Err != nil {
		return fmt.Errorf("grow: %v %v", err, r[t].Err)
	}
	if td, _ = a.ListTopics(ctx, t); len(td[t].Partitions) != 4 {
		return fmt.Errorf("%d partitions after grow", len(td[t].Partitions))
	}
	if r, err := a.DeleteTopics(ctx, t); err != nil || r[t].Err != nil {
		return fmt.Errorf("delete: %v %v", err, r[t].Err)
	}
	return waitFor("topic gone", 10*time.Second, func() bool { td, err := a.ListTopics(ctx); return err == nil && !td.Has(t) })
}

func (franzRunner) adminConfigs() error {
	a, cl, err := fadmin()
	if err != nil {
		return err
	}
	defer cl.Close()
	t := topic("cfg")
	if _, err := a.CreateTopic(ctx, 1, 1, nil, t); err != nil {
		return err
	}
	get := func(name string) (string, error) {
		rc, err := a.DescribeTopicConfigs(ctx, t)
		if err != nil {
			return "", err
		}
		r, err := rc.On(t, nil)
		if err != nil {
			return "", err
		}
		for _, c := range r.Configs {
			if c.Key == name {
				return c.MaybeValue(), nil
			}
		}
		return "", fmt.Errorf("%s not described", name)
	}
	if v, err := get("cleanup.policy"); err != nil || v != "delete" {
		return fmt.Errorf("cleanup.policy %q %v", v, err)
	}
	v := "12345678"
	if r, err := a.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "retention.ms", Value: &v}}, t); err != nil || r[0].Err != nil {
		return fmt.Errorf("alter: %v %+v", err, r)
	}
	if got, err := get("retention.ms"); err != nil || got != v {
		return fmt.Errorf("retention.ms after alter %q %v", got, err)
	}
	bc, err := a.DescribeBrokerConfigs(ctx, 1)
	if err != nil || len(bc) == 0 || len(bc[0].Configs) == 0 {
		return fmt.Errorf("broker configs: %v", err)
	}
	return nil
}

func (franzRunner) groupAdmin() error {
	t, g := topic("gadmin"), topic("ga")
	if err := fproduce(t, records(10, "g"), -1, nil); err != nil {
		return err
	}
	a, cl, err := fadmin()
	if err != nil {
		return err
	}
	defer cl.Close()
	m, err := franzJoin(g, t)
	if err != nil {
		return err
	}
	if err := waitFor("member reads 10", 30*time.Second, func() bool { r, _ := m.snapshot(); return len(r) >= 10 }); err != nil {
		m.close()
		return err
	}
	d, err := a.DescribeGroups(ctx, g)
	if err != nil || d[g].State != "Stable" || len(d[g].Members) != 1 {
		m.close()
		return fmt.Errorf("describe: %v %s %d members", err, d[g].State, len(d[g].Members))
	}
	if err := m.close(); err != nil {
		return err
	}
	committed := func() (int64, error) {
		r, err := a.FetchOffsets(ctx, g)
		if err != nil {
			return 0, err
		}
		var sum int64
		r.Each(func(o kadm.OffsetResponse) { sum += o.At })
		return sum, nil
	}
	if n, err := committed(); err != nil || n != 10 {
		return fmt.Errorf("committed sum %d %v", n, err)
	}
	lg, err := a.ListGroups(ctx)
	if err != nil || !containsGroup(lg.Groups(), g) {
		return fmt.Errorf("not listed: %v", err)
	}
	var reset kadm.Offsets
	for p := int32(0); p < 3; p++ {
		reset.Add(kadm.Offset{Topic: t, Partition: p, At: 0, LeaderEpoch: -1})
	}
	if r, err := a.CommitOffsets(ctx, g, reset); err != nil || r.Error() != nil {
		return fmt.Errorf("reset: %v %v", err, r.Error())
	}
	if n, err := committed(); err != nil || n != 0 {
		return fmt.Errorf("after reset committed sum %d %v", n, err)
	}
	if r, err := a.DeleteGroups(ctx, g); err != nil || r[g].Err != nil {
		return fmt.Errorf("delete: %v %v", err, r[g].Err)
	}
	if lg, _ = a.ListGroups(ctx); containsGroup(lg.Groups(), g) {
		return fmt.Errorf("still listed after delete")
	}
	return nil
}

func containsGroup(gs []string, g string) bool {
	for _, x := range gs {
		if x == g {
			return true
		}
	}
	return false
}

func (franzRunner) transactions() error {
	t := topic("txn")
	cl, err := fclient(kgo.TransactionalID(topic("tx")), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		return err
	}
	for _, step := range []struct {
		tag    string
		commit kgo.TransactionEndTry
	}{{"c1", kgo.TryCommit}, {"ab", kgo.TryAbort}, {"c2", kgo.TryCommit}} {
		if err := cl.BeginTransaction(); err != nil {
			cl.Close()
			return err
		}
		if err := cl.ProduceSync(ctx, toFranz(t, records(5, step.tag), 0, nil)...).FirstErr(); err != nil {
			cl.Close()
			return err
		}
		if err := cl.EndTransaction(ctx, step.commit); err != nil {
			cl.Close()
			return fmt.Errorf("end %s: %w", step.tag, err)
		}
	}
	cl.Close()
	got, err := fconsume(t, 10, kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	if err != nil {
		return fmt.Errorf("read_committed: %w", err)
	}
	if err := expectValues(got, append(records(5, "c1"), records(5, "c2")...)); err != nil {
		return fmt.Errorf("read_committed: %w", err)
	}
	got, err = fconsume(t, 15, kgo.FetchIsolationLevel(kgo.ReadUncommitted()))
	if err != nil || len(got) != 15 {
		return fmt.Errorf("read_uncommitted %d %v", len(got), err)
	}
	return nil
}
