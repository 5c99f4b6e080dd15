package main

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/IBM/sarama"
)

type saramaRunner struct {
	v sarama.KafkaVersion
}

func newSarama(v string) (runner, string, error) {
	kv := sarama.MaxVersion
	if v != "max" {
		var err error
		if kv, err = sarama.ParseKafkaVersion(v); err != nil {
			return nil, "", err
		}
	}
	return &saramaRunner{v: kv}, fmt.Sprintf("%s Version=%s", moduleVersion("github.com/IBM/sarama"), kv), nil
}

func (s *saramaRunner) cfg() *sarama.Config {
	c := sarama.NewConfig()
	c.Version = s.v
	c.ClientID = "oxbow-matrix"
	c.Producer.Return.Successes = true
	c.Producer.RequiredAcks = sarama.WaitForAll
	c.Consumer.Return.Errors = true
	c.Metadata.Retry.Backoff = 100 * time.Millisecond
	return c
}

func (s *saramaRunner) produce(c *sarama.Config, t string, rs []rec, partition int32, ts []time.Time) error {
	if partition >= 0 {
		c.Producer.Partitioner = sarama.NewManualPartitioner
	}
	p, err := sarama.NewSyncProducer([]string{bootstrap}, c)
	if err != nil {
		return fmt.Errorf("producer: %w", err)
	}
	defer p.Close()
	return s.send(p, t, rs, partition, ts)
}

func (s *saramaRunner) send(p sarama.SyncProducer, t string, rs []rec, partition int32, ts []time.Time) error {
	msgs := make([]*sarama.ProducerMessage, len(rs))
	for i, r := range rs {
		m := &sarama.ProducerMessage{Topic: t, Key: sarama.StringEncoder(r.Key), Value: sarama.StringEncoder(r.Value)}
		for h := 0; h+1 < len(r.Headers); h += 2 {
			m.Headers = append(m.Headers, sarama.RecordHeader{Key: []byte(r.Headers[h]), Value: []byte(r.Headers[h+1])})
		}
		if partition >= 0 {
			m.Partition = partition
		}
		if ts != nil {
			m.Timestamp = ts[i]
		}
		msgs[i] = m
	}
	if err := p.SendMessages(msgs); err != nil {
		return fmt.Errorf("send: %w", err)
	}
	return nil
}

func fromSarama(m *sarama.ConsumerMessage) rec {
	r := rec{Key: string(m.Key), Value: string(m.Value), Partition: m.Partition, Offset: m.Offset, Time: m.Timestamp}
	for _, h := range m.Headers {
		r.Headers = append(r.Headers, string(h.Key), string(h.Value))
	}
	return r
}

// consume reads every partition of t from offset `from` until n records arrived (then 300 ms more
// to catch extras) or 20 s passed.
func (s *saramaRunner) consume(c *sarama.Config, t string, partitions []int32, from int64, n int) ([]rec, error) {
	cons, err := sarama.NewConsumer([]string{bootstrap}, c)
	if err != nil {
		return nil, fmt.Errorf("consumer: %w", err)
	}
	defer cons.Close()
	if partitions == nil {
		if partitions, err = cons.Partitions(t); err != nil {
			return nil, err
		}
	}
	ch := make(chan rec, 1000)
	errs := make(chan error, 10)
	for _, p := range partitions {
		pc, err := cons.ConsumePartition(t, p, from)
		if err != nil {
			return nil, fmt.Errorf("consume partition %d: %w", p, err)
		}
		defer pc.AsyncClose()
		go func() {
			for {
				select {
				case m, ok := <-pc.Messages():
					if !ok {
						return
					}
					ch <- fromSarama(m)
				case e, ok := <-pc.Errors():
					if ok {
						errs <- e
					}
				}
			}
		}()
	}
	var got []rec
	deadline := time.After(20 * time.Second)
	for {
		var extra <-chan time.Time
		if len(got) >= n {
			extra = time.After(300 * time.Millisecond)
		}
		select {
		case r := <-ch:
			got = append(got, r)
		case e := <-errs:
			return got, fmt.Errorf("consumer error: %w", e)
		case <-extra:
			return got, nil
		case <-deadline:
			return got, fmt.Errorf("got %d of %d records in 20s", len(got), n)
		}
	}
}

func (s *saramaRunner) metadataAutocreate() error {
	t := topic("auto")
	if err := s.produce(s.cfg(), t, records(1, "a"), -1, nil); err != nil {
		return err
	}
	cl, err := sarama.NewClient([]string{bootstrap}, s.cfg())
	if err != nil {
		return err
	}
	defer cl.Close()
	if err := cl.RefreshMetadata(t); err != nil {
		return err
	}
	ps, err := cl.Partitions(t)
	if err != nil || len(ps) != 3 {
		return fmt.Errorf("partitions %v %v, want 3", ps, err)
	}
	if b := cl.Brokers(); len(b) != 1 {
		return fmt.Errorf("%d brokers", len(b))
	}
	return nil
}

var saramaCodecs = map[string]sarama.CompressionCodec{"none": sarama.CompressionNone, "gzip": sarama.CompressionGZIP,
	"snappy": sarama.CompressionSnappy, "lz4": sarama.CompressionLZ4, "zstd": sarama.CompressionZSTD}

func (s *saramaRunner) codec(codec string) error {
	if codec == "zstd" && !s.v.IsAtLeast(sarama.V2_1_0_0) {
		return na("sarama refuses zstd when config.Version is below 2.1.0.0 (zstd came with Kafka 2.1)")
	}
	t := topic("codec-" + codec)
	c := s.cfg()
	c.Producer.Compression = saramaCodecs[codec]
	want := records(20, codec)
	if err := s.produce(c, t, want, -1, nil); err != nil {
		return err
	}
	got, err := s.consume(s.cfg(), t, nil, sarama.OffsetOldest, 20)
	if err != nil {
		return err
	}
	return sameRecords(got, want)
}

func keyedRecords() []rec {
	rs := make([]rec, 36)
	for i := range rs {
		rs[i] = rec{Key: fmt.Sprintf("key%d", i%6), Value: fmt.Sprint(i)}
	}
	return rs
}

func (s *saramaRunner) keyed() error {
	t := topic("keyed")
	if err := s.produce(s.cfg(), t, keyedRecords(), -1, nil); err != nil {
		return err
	}
	got, err := s.consume(s.cfg(), t, nil, sarama.OffsetOldest, 36)
	if err != nil {
		return err
	}
	return checkKeyed(got, 36)
}

func (s *saramaRunner) seekOffset() error {
	t := topic("seek")
	if err := s.produce(s.cfg(), t, records(20, "s"), 0, nil); err != nil {
		return err
	}
	got, err := s.consume(s.cfg(), t, []int32{0}, 7, 13)
	if err != nil {
		return err
	}
	if got[0].Offset != 7 || got[0].Value != "s-7" || len(got) != 13 {
		return fmt.Errorf("from offset 7 got first %d %q, %d records", got[0].Offset, got[0].Value, len(got))
	}
	return nil
}

// timestamped: 20 records, record i at base + i s; the probe base+7.5 s must give offset 8.
func timestamped() ([]rec, []time.Time, time.Time) {
	base := time.Now().Add(-time.Hour).Truncate(time.Second)
	ts := make([]time.Time, 20)
	for i := range ts {
		ts[i] = base.Add(time.Duration(i) * time.Second)
	}
	return records(20, "t"), ts, base
}

func (s *saramaRunner) seekTimestamp() error {
	t := topic("ts")
	rs, ts, base := timestamped()
	if err := s.produce(s.cfg(), t, rs, 0, ts); err != nil {
		return err
	}
	cl, err := sarama.NewClient([]string{bootstrap}, s.cfg())
	if err != nil {
		return err
	}
	defer cl.Close()
	probe := map[int64]int64{
		base.Add(7500 * time.Millisecond).UnixMilli(): 8,
		base.Add(-time.Second).UnixMilli():            0,
		base.Add(time.Minute).UnixMilli():             20, // past the last: the end offset (-1 answer maps to it for v0)
		sarama.OffsetOldest:                           0,
		sarama.OffsetNewest:                           20,
	}
	for at, want := range probe {
		off, err := cl.GetOffset(t, 0, at)
		if err != nil {
			return fmt.Errorf("GetOffset(%d): %w", at, err)
		}
		if off != want && !(want == 20 && at > 0 && off == -1) {
			return fmt.Errorf("GetOffset(%d) = %d, want %d", at, off, want)
		}
	}
	off, _ := cl.GetOffset(t, 0, base.Add(7500*time.Millisecond).UnixMilli())
	got, err := s.consume(s.cfg(), t, []int32{0}, off, 12)
	if err != nil {
		return err
	}
	if got[0].Value != "t-8" || !got[0].Time.Equal(ts[8]) {
		return fmt.Errorf("first record after seek: %q at %v", got[0].Value, got[0].Time)
	}
	return nil
}

type saramaHandler struct {
	mu       sync.Mutex
	got      []rec
	assigned map[int32]bool
}

func (h *saramaHandler) Setup(sess sarama.ConsumerGroupSession) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.assigned = map[int32]bool{}
	for _, ps := range sess.Claims() {
		for _, p := range ps {
			h.assigned[p] = true
		}
	}
	return nil
}
func (h *saramaHandler) Cleanup(sarama.ConsumerGroupSession) error { return nil }
func (h *saramaHandler) ConsumeClaim(sess sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	for m := range claim.Messages() {
		h.mu.Lock()
		h.got = append(h.got, fromSarama(m))
		h.mu.Unlock()
		sess.MarkMessage(m, "")
	}
	return nil
}
func (h *saramaHandler) snapshot() ([]rec, int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]rec(nil), h.got...), len(h.assigned)
}

type saramaMember struct {
	g      sarama.ConsumerGroup
	h      *saramaHandler
	cancel func()
	done   chan struct{}
}

func (s *saramaRunner) join(group, t string) (*saramaMember, error) {
	c := s.cfg()
	c.Consumer.Offsets.Initial = sarama.OffsetOldest
	c.Consumer.Offsets.AutoCommit.Interval = 200 * time.Millisecond
	g, err := sarama.NewConsumerGroup([]string{bootstrap}, group, c)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	m := &saramaMember{g: g, h: &saramaHandler{}, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(m.done)
		for ctx.Err() == nil {
			if err := g.Consume(ctx, []string{t}, m.h); err != nil && ctx.Err() == nil {
				time.Sleep(200 * time.Millisecond)
			}
		}
	}()
	go func() {
		for range g.Errors() {
		}
	}()
	return m, nil
}

func (m *saramaMember) close() error {
	m.cancel()
	<-m.done
	return m.g.Close()
}

func waitFor(what string, d time.Duration, f func() bool) error {
	deadline := time.Now().Add(d)
	for !f() {
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return nil
}

func values(rs []rec) []string {
	v := make([]string, len(rs))
	for i, r := range rs {
		v[i] = r.Value
	}
	sort.Strings(v)
	return v
}

func expectValues(got []rec, want []rec) error {
	g, w := values(got), values(want)
	if fmt.Sprint(g) != fmt.Sprint(w) {
		return fmt.Errorf("got %d records %v, want %d", len(g), g, len(w))
	}
	return nil
}

func (s *saramaRunner) group() error {
	t, g := topic("group"), topic("g")
	if err := s.produce(s.cfg(), t, nil, -1, nil); err != nil { // metadata creates the topic
		return err
	}
	a, err := s.join(g, t)
	if err != nil {
		return err
	}
	if err := waitFor("first member assigned 3 partitions", 30*time.Second, func() bool { _, n := a.h.snapshot(); return n == 3 }); err != nil {
		return err
	}
	b, err := s.join(g, t)
	if err != nil {
		return err
	}
	if err := waitFor("rebalance to 2 members", 30*time.Second, func() bool {
		_, na := a.h.snapshot()
		_, nb := b.h.snapshot()
		return na+nb == 3 && na > 0 && nb > 0
	}); err != nil {
		return err
	}
	want := records(30, "m")
	if err := s.produce(s.cfg(), t, want, -1, nil); err != nil {
		return err
	}
	if err := waitFor("30 records across both members", 30*time.Second, func() bool {
		ga, _ := a.h.snapshot()
		gb, _ := b.h.snapshot()
		return len(ga)+len(gb) >= 30
	}); err != nil {
		return err
	}
	time.Sleep(500 * time.Millisecond)
	ga, _ := a.h.snapshot()
	gb, _ := b.h.snapshot()
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
	if err := s.produce(s.cfg(), t, more, -1, nil); err != nil {
		return err
	}
	c, err := s.join(g, t)
	if err != nil {
		return err
	}
	defer c.close()
	_ = waitFor("the resumed member to read 10", 30*time.Second, func() bool { gc, _ := c.h.snapshot(); return len(gc) >= 10 })
	time.Sleep(500 * time.Millisecond)
	gc, _ := c.h.snapshot()
	if err := expectValues(gc, more); err != nil {
		return fmt.Errorf("resumed member: %w", err)
	}
	return nil
}

func (s *saramaRunner) idempotent() error {
	t := topic("idem")
	c := s.cfg()
	c.Producer.Idempotent = true
	c.Net.MaxOpenRequests = 1
	want := records(30, "i")
	p, err := sarama.NewSyncProducer([]string{bootstrap}, c)
	if err != nil {
		return err
	}
	for i := 0; i < 3; i++ { // three batches from one producer id
		if err := s.send(p, t, want[i*10:(i+1)*10], -1, nil); err != nil {
			p.Close()
			return err
		}
	}
	p.Close()
	got, err := s.consume(s.cfg(), t, nil, sarama.OffsetOldest, 30)
	if err != nil {
		return err
	}
	return sameRecords(got, want)
}

func (s *saramaRunner) admin() (sarama.ClusterAdmin, error) {
	return sarama.NewClusterAdmin([]string{bootstrap}, s.cfg())
}

func (s *saramaRunner) adminTopics() error {
	a, err := s.admin()
	if err != nil {
		return err
	}
	defer a.Close()
	t := topic("admin")
	ret := "3600000"
	if err := a.CreateTopic(t, &sarama.TopicDetail{NumPartitions: 2, ReplicationFactor: 1,
		ConfigEntries: map[string]*string{"retention.ms": &ret}}, false); err != nil {
		return fmt.Errorf("create: %w", err)
	}
	if err := a.CreateTopic(t, &sarama.TopicDetail{NumPartitions: 2, ReplicationFactor: 1}, false); err == nil {
		return fmt.Errorf("creating it again succeeded")
	}
	md, err := a.DescribeTopics([]string{t})
	if err != nil || len(md) != 1 || md[0].Err != sarama.ErrNoError || len(md[0].Partitions) != 2 {
		return fmt.Errorf("describe: %v %+v", err, md)
	}
	if err := a.CreatePartitions(t, 4, nil, false); err != nil {
		return fmt.Errorf("create partitions: %w", err)
	}
	ts, err := a.ListTopics()
	if err != nil || ts[t].NumPartitions != 4 {
		return fmt.Errorf("list after grow: %v %+v", err, ts[t])
	}
	if err := a.DeleteTopic(t); err != nil {
		return fmt.Errorf("delete: %w", err)
	}
	return waitFor("topic gone", 10*time.Second, func() bool {
		ts, err := a.ListTopics()
		_, ok := ts[t]
		return err == nil && !ok
	})
}

func (s *saramaRunner) adminConfigs() error {
	a, err := s.admin()
	if err != nil {
		return err
	}
	defer a.Close()
	t := topic("cfg")
	if err := a.CreateTopic(t, &sarama.TopicDetail{NumPartitions: 1, ReplicationFactor: 1}, false); err != nil {
		return err
	}
	get := func(name string) (string, error) {
		es, err := a.DescribeConfig(sarama.ConfigResource{Type: sarama.TopicResource, Name: t})
		if err != nil {
			return "", err
		}
		for _, e := range es {
			if e.Name == name {
				return e.Value, nil
			}
		}
		return "", fmt.Errorf("%s not described (%d entries)", name, len(es))
	}
	if v, err := get("cleanup.policy"); err != nil || v != "delete" {
		return fmt.Errorf("cleanup.policy %q %v", v, err)
	}
	v := "12345678"
	if s.v.IsAtLeast(sarama.V2_3_0_0) {
		err = a.IncrementalAlterConfig(sarama.TopicResource, t, map[string]sarama.IncrementalAlterConfigsEntry{
			"retention.ms": {Operation: sarama.IncrementalAlterConfigsOperationSet, Value: &v}}, false)
	} else {
		err = a.AlterConfig(sarama.TopicResource, t, map[string]*string{"retention.ms": &v}, false)
	}
	if err != nil {
		return fmt.Errorf("alter: %w", err)
	}
	if got, err := get("retention.ms"); err != nil || got != v {
		return fmt.Errorf("retention.ms after alter: %q %v", got, err)
	}
	es, err := a.DescribeConfig(sarama.ConfigResource{Type: sarama.BrokerResource, Name: "1"})
	if err != nil || len(es) == 0 {
		return fmt.Errorf("broker config: %d entries, %v", len(es), err)
	}
	return nil
}

func (s *saramaRunner) groupAdmin() error {
	t, g := topic("gadmin"), topic("ga")
	want := records(10, "g")
	if err := s.produce(s.cfg(), t, want, -1, nil); err != nil {
		return err
	}
	a, err := s.admin()
	if err != nil {
		return err
	}
	defer a.Close()
	m, err := s.join(g, t)
	if err != nil {
		return err
	}
	if err := waitFor("the member to read 10", 30*time.Second, func() bool { r, _ := m.h.snapshot(); return len(r) >= 10 }); err != nil {
		m.close()
		return err
	}
	d, err := a.DescribeConsumerGroups([]string{g})
	if err != nil || len(d) != 1 || d[0].State != "Stable" || len(d[0].Members) != 1 {
		m.close()
		return fmt.Errorf("describe active group: %v %+v", err, d)
	}
	time.Sleep(500 * time.Millisecond)
	if err := m.close(); err != nil {
		return err
	}
	committed := func() (int64, error) {
		r, err := a.ListConsumerGroupOffsets(g, map[string][]int32{t: {0, 1, 2}})
		if err != nil {
			return 0, err
		}
		var sum int64
		for p := int32(0); p < 3; p++ {
			if b := r.GetBlock(t, p); b != nil && b.Offset > 0 {
				sum += b.Offset
			}
		}
		return sum, nil
	}
	if n, err := committed(); err != nil || n != 10 {
		return fmt.Errorf("committed offsets sum %d, %v; want 10", n, err)
	}
	gs, err := a.ListConsumerGroups()
	if _, ok := gs[g]; err != nil || !ok {
		return fmt.Errorf("list groups: %v %v", err, gs)
	}
	// reset to the earliest offsets as kafka-consumer-groups --reset-offsets does: commit as a non-member
	cl, err := sarama.NewClient([]string{bootstrap}, s.cfg())
	if err != nil {
		return err
	}
	om, err := sarama.NewOffsetManagerFromClient(g, cl)
	if err != nil {
		cl.Close()
		return err
	}
	for p := int32(0); p < 3; p++ {
		pom, err := om.ManagePartition(t, p)
		if err != nil {
			cl.Close()
			return err
		}
		pom.ResetOffset(0, "")
		defer pom.AsyncClose()
	}
	om.Commit()
	om.Close()
	cl.Close()
	if n, err := committed(); err != nil || n != 0 {
		return fmt.Errorf("after reset committed offsets sum %d, %v; want 0", n, err)
	}
	if err := a.DeleteConsumerGroup(g); err != nil {
		return fmt.Errorf("delete group: %w", err)
	}
	gs, err = a.ListConsumerGroups()
	if _, ok := gs[g]; err != nil || ok {
		return fmt.Errorf("group still listed after delete: %v", err)
	}
	return nil
}

func (s *saramaRunner) transactions() error {
	if !s.v.IsAtLeast(sarama.V0_11_0_0) {
		return na("transactions need config.Version 0.11+")
	}
	t := topic("txn")
	c := s.cfg()
	c.Producer.Idempotent = true
	c.Net.MaxOpenRequests = 1
	c.Producer.Transaction.ID = topic("tx")
	c.Producer.Partitioner = sarama.NewManualPartitioner
	p, err := sarama.NewSyncProducer([]string{bootstrap}, c)
	if err != nil {
		return fmt.Errorf("transactional producer: %w", err)
	}
	defer p.Close()
	step := func(tag string, commit bool) error {
		if err := p.BeginTxn(); err != nil {
			return fmt.Errorf("begin: %w", err)
		}
		if err := s.send(p, t, records(5, tag), 0, nil); err != nil {
			return err
		}
		if commit {
			return p.CommitTxn()
		}
		return p.AbortTxn()
	}
	if err := step("c1", true); err != nil {
		return fmt.Errorf("commit 1: %w", err)
	}
	if err := step("ab", false); err != nil {
		return fmt.Errorf("abort: %w", err)
	}
	if err := step("c2", true); err != nil {
		return fmt.Errorf("commit 2: %w", err)
	}
	rc := s.cfg()
	rc.Consumer.IsolationLevel = sarama.ReadCommitted
	got, err := s.consume(rc, t, []int32{0}, sarama.OffsetOldest, 10)
	if err != nil {
		return fmt.Errorf("read_committed: %w", err)
	}
	if err := expectValues(got, append(records(5, "c1"), records(5, "c2")...)); err != nil {
		return fmt.Errorf("read_committed: %w", err)
	}
	ru := s.cfg()
	ru.Consumer.IsolationLevel = sarama.ReadUncommitted
	got, err = s.consume(ru, t, []int32{0}, sarama.OffsetOldest, 15)
	if err != nil || len(got) != 15 {
		return fmt.Errorf("read_uncommitted: %d records, %v", len(got), err)
	}
	return nil
}
