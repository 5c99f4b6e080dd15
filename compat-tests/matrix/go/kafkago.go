package main

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	kafka "github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/compress"
)

// kafka-go (segmentio): Writer to produce, Reader (partition and group modes) and Conn to
// consume and seek, Client for admin.
type kafkaGoRunner struct{}

func newKafkaGo() runner { return kafkaGoRunner{} }

func kgWriter(codec compress.Compression, balancer kafka.Balancer) *kafka.Writer {
	if balancer == nil {
		balancer = &kafka.Hash{}
	}
	return &kafka.Writer{Addr: kafka.TCP(bootstrap), Balancer: balancer, Compression: codec,
		AllowAutoTopicCreation: true, BatchTimeout: 10 * time.Millisecond, RequiredAcks: kafka.RequireAll}
}

func toKG(t string, rs []rec, ts []time.Time) []kafka.Message {
	ms := make([]kafka.Message, len(rs))
	for i, r := range rs {
		m := kafka.Message{Topic: t, Key: []byte(r.Key), Value: []byte(r.Value)}
		for h := 0; h+1 < len(r.Headers); h += 2 {
			m.Headers = append(m.Headers, kafka.Header{Key: r.Headers[h], Value: []byte(r.Headers[h+1])})
		}
		if ts != nil {
			m.Time = ts[i]
		}
		ms[i] = m
	}
	return ms
}

func fromKG(m kafka.Message) rec {
	r := rec{Key: string(m.Key), Value: string(m.Value), Partition: int32(m.Partition), Offset: m.Offset, Time: m.Time}
	for _, h := range m.Headers {
		r.Headers = append(r.Headers, h.Key, string(h.Value))
	}
	return r
}

var partition0 = kafka.BalancerFunc(func(kafka.Message, ...int) int { return 0 })

func kgProduce(t string, rs []rec, codec compress.Compression, balancer kafka.Balancer, ts []time.Time) error {
	w := kgWriter(codec, balancer)
	defer w.Close()
	var err error
	for attempt := 0; attempt < 20; attempt++ { // the first write may race the topic's auto-creation
		c, cancel := context.WithTimeout(ctx, 20*time.Second)
		err = w.WriteMessages(c, toKG(t, rs, ts)...)
		cancel()
		if !errors.Is(err, kafka.UnknownTopicOrPartition) && !errors.Is(err, kafka.LeaderNotAvailable) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	return err
}

func kgPartitions(t string) ([]int, error) {
	conn, err := kafka.Dial("tcp", bootstrap)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	ps, err := conn.ReadPartitions(t)
	if err != nil {
		return nil, err
	}
	out := make([]int, len(ps))
	for i, p := range ps {
		out[i] = p.ID
	}
	return out, nil
}

// kgRead reads partition p from offset (kafka.FirstOffset or an offset) until n records.
func kgRead(t string, p int, offset int64, n int, isolation kafka.IsolationLevel) ([]rec, error) {
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: []string{bootstrap}, Topic: t, Partition: p, MinBytes: 1, MaxBytes: 10 << 20,
		MaxWait: 200 * time.Millisecond, IsolationLevel: isolation})
	defer r.Close()
	if err := r.SetOffset(offset); err != nil {
		return nil, err
	}
	var got []rec
	deadline := time.Now().Add(20 * time.Second)
	for {
		wait := time.Until(deadline)
		if len(got) >= n {
			wait = 300 * time.Millisecond
		}
		c, cancel := context.WithTimeout(ctx, wait)
		m, err := r.ReadMessage(c)
		cancel()
		if err != nil {
			if len(got) >= n {
				return got, nil
			}
			return got, fmt.Errorf("got %d of %d: %w", len(got), n, err)
		}
		got = append(got, fromKG(m))
	}
}

func kgConsumeAll(t string, n int) ([]rec, error) {
	ps, err := kgPartitions(t)
	if err != nil {
		return nil, err
	}
	var all []rec
	for _, p := range ps {
		// per partition: read until the partition's end offset
		conn, err := kafka.DialLeader(ctx, "tcp", bootstrap, t, p)
		if err != nil {
			return nil, err
		}
		_, last, err := conn.ReadOffsets()
		conn.Close()
		if err != nil {
			return nil, err
		}
		if last == 0 {
			continue
		}
		got, err := kgRead(t, p, kafka.FirstOffset, int(last), kafka.ReadUncommitted)
		if err != nil {
			return nil, err
		}
		all = append(all, got...)
	}
	if len(all) != n {
		return all, fmt.Errorf("consumed %d, want %d", len(all), n)
	}
	return all, nil
}

func (kafkaGoRunner) metadataAutocreate() error {
	t := topic("auto")
	if err := kgProduce(t, records(1, "a"), 0, nil, nil); err != nil {
		return err
	}
	cl := &kafka.Client{Addr: kafka.TCP(bootstrap)}
	md, err := cl.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{t}})
	if err != nil {
		return err
	}
	if len(md.Brokers) != 1 || len(md.Topics) != 1 || len(md.Topics[0].Partitions) != 3 {
		return fmt.Errorf("metadata: %d brokers, %+v", len(md.Brokers), md.Topics)
	}
	return nil
}

var kgCodecs = map[string]compress.Compression{"none": 0, "gzip": kafka.Gzip, "snappy": kafka.Snappy,
	"lz4": kafka.Lz4, "zstd": kafka.Zstd}

func (kafkaGoRunner) codec(c string) error {
	t := topic("codec-" + c)
	want := records(20, c)
	if err := kgProduce(t, want, kgCodecs[c], nil, nil); err != nil {
		return err
	}
	got, err := kgConsumeAll(t, 20)
	if err != nil {
		return err
	}
	return sameRecords(got, want)
}

func (kafkaGoRunner) keyed() error {
	t := topic("keyed")
	if err := kgProduce(t, keyedRecords(), 0, nil, nil); err != nil {
		return err
	}
	got, err := kgConsumeAll(t, 36)
	if err != nil {
		return err
	}
	return checkKeyed(got, 36)
}

func (kafkaGoRunner) seekOffset() error {
	t := topic("seek")
	if err := kgProduce(t, records(20, "s"), 0, partition0, nil); err != nil {
		return err
	}
	got, err := kgRead(t, 0, 7, 13, kafka.ReadUncommitted)
	if err != nil {
		return err
	}
	if len(got) != 13 || got[0].Offset != 7 || got[0].Value != "s-7" {
		return fmt.Errorf("Reader from 7: %d records, first %d", len(got), got[0].Offset)
	}
	conn, err := kafka.DialLeader(ctx, "tcp", bootstrap, t, 0)
	if err != nil {
		return err
	}
	defer conn.Close()
	first, last, err := conn.ReadOffsets()
	if err != nil || first != 0 || last != 20 {
		return fmt.Errorf("Conn.ReadOffsets %d %d %v", first, last, err)
	}
	if _, err := conn.Seek(15, kafka.SeekAbsolute); err != nil {
		return err
	}
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	m, err := conn.ReadMessage(1 << 20)
	if err != nil || m.Offset != 15 || string(m.Value) != "s-15" {
		return fmt.Errorf("Conn after Seek(15): offset %d %q %v", m.Offset, m.Value, err)
	}
	return nil
}

func (kafkaGoRunner) seekTimestamp() error {
	t := topic("ts")
	rs, ts, base := timestamped()
	if err := kgProduce(t, rs, 0, partition0, ts); err != nil {
		return err
	}
	conn, err := kafka.DialLeader(ctx, "tcp", bootstrap, t, 0)
	if err != nil {
		return err
	}
	defer conn.Close()
	for probe, want := range map[time.Duration]int64{7500 * time.Millisecond: 8, -time.Second: 0, time.Minute: 20} {
		off, err := conn.ReadOffset(base.Add(probe))
		if err != nil {
			return fmt.Errorf("Conn.ReadOffset(%v): %w", probe, err)
		}
		if off != want && !(want == 20 && off == -1) {
			return fmt.Errorf("Conn.ReadOffset(base%+v) = %d, want %d", probe, off, want)
		}
	}
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: []string{bootstrap}, Topic: t, Partition: 0, MinBytes: 1, MaxBytes: 10 << 20, MaxWait: 200 * time.Millisecond})
	defer r.Close()
	if err := r.SetOffsetAt(ctx, base.Add(7500*time.Millisecond)); err != nil {
		return fmt.Errorf("Reader.SetOffsetAt: %w", err)
	}
	c, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	m, err := r.ReadMessage(c)
	if err != nil || string(m.Value) != "t-8" || !m.Time.Equal(ts[8]) {
		return fmt.Errorf("first after SetOffsetAt: %q %v %v", m.Value, m.Time, err)
	}
	return nil
}

type kgMember struct {
	r      *kafka.Reader
	mu     sync.Mutex
	got    []rec
	cancel func()
	done   chan struct{}
}

func kgJoin(g, t string) *kgMember {
	m := &kgMember{done: make(chan struct{}),
		r: kafka.NewReader(kafka.ReaderConfig{Brokers: []string{bootstrap}, GroupID: g, Topic: t, MinBytes: 1, MaxBytes: 10 << 20,
			MaxWait: 200 * time.Millisecond, HeartbeatInterval: 500 * time.Millisecond, StartOffset: kafka.FirstOffset,
			CommitInterval: 0, SessionTimeout: 10 * time.Second, RebalanceTimeout: 10 * time.Second})}
	c, cancel := context.WithCancel(ctx)
	m.cancel = cancel
	go func() {
		defer close(m.done)
		for {
			msg, err := m.r.FetchMessage(c)
			if err != nil {
				return
			}
			m.mu.Lock()
			m.got = append(m.got, fromKG(msg))
			m.mu.Unlock()
			_ = m.r.CommitMessages(c, msg)
		}
	}()
	return m
}

func (m *kgMember) snapshot() []rec {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]rec(nil), m.got...)
}

func (m *kgMember) close() error {
	m.cancel()
	<-m.done
	return m.r.Close()
}

// kgGroupMembers: the group's members with at least one partition assigned (DescribeGroups).
func kgGroupMembers(g string) (int, string, int) {
	cl := &kafka.Client{Addr: kafka.TCP(bootstrap)}
	d, err := cl.DescribeGroups(ctx, &kafka.DescribeGroupsRequest{GroupIDs: []string{g}})
	if err != nil || len(d.Groups) != 1 {
		return 0, "", 0
	}
	withParts, parts := 0, 0
	for _, m := range d.Groups[0].Members {
		n := 0
		for _, t := range m.MemberAssignments.Topics {
			n += len(t.Partitions)
		}
		if n > 0 {
			withParts++
		}
		parts += n
	}
	return withParts, d.Groups[0].GroupState, parts
}

func (kafkaGoRunner) group() error {
	t, g := topic("group"), topic("g")
	cl := &kafka.Client{Addr: kafka.TCP(bootstrap)}
	if _, err := cl.CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{{Topic: t, NumPartitions: 3, ReplicationFactor: 1}}}); err != nil {
		return err
	}
	a := kgJoin(g, t)
	if err := waitFor("first member assigned 3", 30*time.Second, func() bool { n, s, p := kgGroupMembers(g); return n == 1 && s == "Stable" && p == 3 }); err != nil {
		return err
	}
	b := kgJoin(g, t)
	if err := waitFor("rebalance to 2 members", 40*time.Second, func() bool { n, s, p := kgGroupMembers(g); return n == 2 && s == "Stable" && p == 3 }); err != nil {
		return err
	}
	want := records(30, "m")
	if err := kgProduce(t, want, 0, nil, nil); err != nil {
		return err
	}
	if err := waitFor("30 records", 30*time.Second, func() bool { return len(a.snapshot())+len(b.snapshot()) >= 30 }); err != nil {
		return err
	}
	time.Sleep(500 * time.Millisecond)
	ga, gb := a.snapshot(), b.snapshot()
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
	if err := kgProduce(t, more, 0, nil, nil); err != nil {
		return err
	}
	c := kgJoin(g, t)
	defer c.close()
	_ = waitFor("resumed member reads 10", 30*time.Second, func() bool { return len(c.snapshot()) >= 10 })
	time.Sleep(500 * time.Millisecond)
	return expectValues(c.snapshot(), more)
}

func (kafkaGoRunner) idempotent() error {
	return na("kafka-go's Writer has no idempotent producer")
}

func (kafkaGoRunner) adminTopics() error {
	cl := &kafka.Client{Addr: kafka.TCP(bootstrap)}
	t := topic("admin")
	r, err := cl.CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{{Topic: t, NumPartitions: 2, ReplicationFactor: 1,
		ConfigEntries: []kafka.ConfigEntry{{ConfigName: "retention.ms", ConfigValue: "3600000"}}}}})
	if err != nil || r.Errors[t] != nil {
		return fmt.Errorf("create: %v %v", err, r.Errors[t])
	}
	r, err = cl.CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{{Topic: t, NumPartitions: 2, ReplicationFactor: 1}}})
	if err != nil || !errors.Is(r.Errors[t], kafka.TopicAlreadyExists) {
		return fmt.Errorf("second create: %v %v", err, r.Errors[t])
	}
	count := func() int {
		md, err := cl.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{t}})
		if err != nil || len(md.Topics) != 1 || md.Topics[0].Error != nil {
			return -1
		}
		return len(md.Topics[0].Partitions)
	}
	if n := count(); n != 2 {
		return fmt.Errorf("%d partitions", n)
	}
	cp, err := cl.CreatePartitions(ctx, &kafka.CreatePartitionsRequest{Topics: []kafka.TopicPartitionsConfig{{Name: t, Count: 4}}})
	if err != nil || cp.Errors[t] != nil {
		return fmt.Errorf("grow: %v %v", err, cp.Errors[t])
	}
	if err := waitFor("4 partitions after grow", 10*time.Second, func() bool { return count() == 4 }); err != nil {
		return fmt.Errorf("%w (Metadata says %d)", err, count())
	}
	dr, err := cl.DeleteTopics(ctx, &kafka.DeleteTopicsRequest{Topics: []string{t}})
	if err != nil || dr.Errors[t] != nil {
		return fmt.Errorf("delete: %v %v", err, dr.Errors[t])
	}
	return waitFor("topic gone", 10*time.Second, func() bool { return count() == -1 })
}

func (kafkaGoRunner) adminConfigs() error {
	cl := &kafka.Client{Addr: kafka.TCP(bootstrap)}
	t := topic("cfg")
	if _, err := cl.CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{{Topic: t, NumPartitions: 1, ReplicationFactor: 1}}}); err != nil {
		return err
	}
	get := func(name string) (string, error) {
		r, err := cl.DescribeConfigs(ctx, &kafka.DescribeConfigsRequest{Resources: []kafka.DescribeConfigRequestResource{{ResourceType: kafka.ResourceTypeTopic, ResourceName: t}}})
		if err != nil {
			return "", err
		}
		if r.Resources[0].Error != nil {
			return "", r.Resources[0].Error
		}
		for _, e := range r.Resources[0].ConfigEntries {
			if e.ConfigName == name {
				return e.ConfigValue, nil
			}
		}
		return "", fmt.Errorf("%s not described", name)
	}
	if v, err := get("cleanup.policy"); err != nil || v != "delete" {
		return fmt.Errorf("cleanup.policy %q %v", v, err)
	}
	r, err := cl.IncrementalAlterConfigs(ctx, &kafka.IncrementalAlterConfigsRequest{Resources: []kafka.IncrementalAlterConfigsRequestResource{{
		ResourceType: kafka.ResourceTypeTopic, ResourceName: t,
		Configs: []kafka.IncrementalAlterConfigsRequestConfig{{Name: "retention.ms", Value: "12345678", ConfigOperation: kafka.ConfigOperationSet}}}}})
	if err != nil || r.Resources[0].Error != nil {
		return fmt.Errorf("incremental alter: %v %+v", err, r)
	}
	if v, err := get("retention.ms"); err != nil || v != "12345678" {
		return fmt.Errorf("retention.ms after alter %q %v", v, err)
	}
	return nil
}

func (kafkaGoRunner) groupAdmin() error {
	t, g := topic("gadmin"), topic("ga")
	cl := &kafka.Client{Addr: kafka.TCP(bootstrap)}
	if _, err := cl.CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{{Topic: t, NumPartitions: 3, ReplicationFactor: 1}}}); err != nil {
		return err
	}
	if err := kgProduce(t, records(10, "g"), 0, nil, nil); err != nil {
		return err
	}
	m := kgJoin(g, t)
	if err := waitFor("member reads 10", 30*time.Second, func() bool { return len(m.snapshot()) >= 10 }); err != nil {
		m.close()
		return err
	}
	n, state, _ := kgGroupMembers(g)
	if n != 1 || state != "Stable" {
		m.close()
		return fmt.Errorf("describe: %d members, %s", n, state)
	}
	if err := m.close(); err != nil {
		return err
	}
	committed := func() (int64, error) {
		r, err := cl.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: g, Topics: map[string][]int{t: {0, 1, 2}}})
		if err != nil {
			return 0, err
		}
		var sum int64
		for _, p := range r.Topics[t] {
			if p.CommittedOffset > 0 {
				sum += p.CommittedOffset
			}
		}
		return sum, nil
	}
	if s, err := committed(); err != nil || s != 10 {
		return fmt.Errorf("committed sum %d %v", s, err)
	}
	lg, err := cl.ListGroups(ctx, &kafka.ListGroupsRequest{})
	if err != nil || !kgListed(lg, g) {
		return fmt.Errorf("not listed: %v", err)
	}
	oc, err := cl.OffsetCommit(ctx, &kafka.OffsetCommitRequest{GroupID: g, GenerationID: -1,
		Topics: map[string][]kafka.OffsetCommit{t: {{Partition: 0, Offset: 0}, {Partition: 1, Offset: 0}, {Partition: 2, Offset: 0}}}})
	if err != nil {
		return fmt.Errorf("reset: %w", err)
	}
	for _, p := range oc.Topics[t] {
		if p.Error != nil {
			return fmt.Errorf("reset partition %d: %w", p.Partition, p.Error)
		}
	}
	if s, err := committed(); err != nil || s != 0 {
		return fmt.Errorf("after reset committed sum %d %v", s, err)
	}
	dg, err := cl.DeleteGroups(ctx, &kafka.DeleteGroupsRequest{GroupIDs: []string{g}})
	if err != nil || dg.Errors[g] != nil {
		return fmt.Errorf("delete: %v %v", err, dg.Errors[g])
	}
	if lg, _ = cl.ListGroups(ctx, &kafka.ListGroupsRequest{}); kgListed(lg, g) {
		return fmt.Errorf("still listed after delete")
	}
	return nil
}

func kgListed(lg *kafka.ListGroupsResponse, g string) bool {
	if lg == nil {
		return false
	}
	for _, x := range lg.Groups {
		if x.GroupID == g {
			return true
		}
	}
	return false
}

func (kafkaGoRunner) transactions() error {
	return na("kafka-go has no transactional producer (only the raw InitProducerID/AddPartitionsToTxn/EndTxn requests)")
}
