package dev.oxbow.matrix;

import java.io.FileWriter;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.*;
import java.util.concurrent.*;
import org.apache.kafka.clients.admin.*;
import org.apache.kafka.clients.consumer.*;
import org.apache.kafka.clients.producer.*;
import org.apache.kafka.common.*;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.header.internals.RecordHeader;
import org.apache.kafka.common.serialization.*;

/**
 * The Java client's runner of the compatibility matrix. One source, compiled against every
 * kafka-clients version in the matrix (2.8 to 4.x): only calls present in all of them, and
 * reflection where a method was renamed (DescribeTopicsResult.all -> allTopicNames).
 * run.sh starts a fresh broker and passes OXBOW_BOOTSTRAP and MATRIX_OUT.
 */
public final class Runner {
  static final String BOOTSTRAP = env("OXBOW_BOOTSTRAP", "127.0.0.1:9092");
  static final String RUN_ID = String.valueOf(System.currentTimeMillis() % 10_000_000);
  static final String VERSION = env("MATRIX_VERSION", clientVersion());
  static FileWriter out;

  /** kafka-clients' own version file (AppInfoParser moved between versions). */
  static String clientVersion() {
    try (var in = Runner.class.getResourceAsStream("/kafka/kafka-version.properties")) {
      Properties p = new Properties();
      p.load(in);
      return p.getProperty("version", "unknown");
    } catch (Exception e) {
      return "unknown";
    }
  }

  static String env(String k, String d) {
    String v = System.getenv(k);
    return v == null || v.isEmpty() ? d : v;
  }

  static String topic(String name) { return "mx-" + name + "-" + RUN_ID; }

  static final class NotApplicable extends RuntimeException {
    NotApplicable(String why) { super(why); }
  }

  interface Scenario { void run() throws Exception; }

  static String json(String s) {
    StringBuilder b = new StringBuilder("\"");
    for (char c : s.toCharArray()) {
      if (c == '"' || c == '\\') b.append('\\').append(c);
      else if (c < 0x20) b.append(String.format("\\u%04x", (int) c));
      else b.append(c);
    }
    return b.append('"').toString();
  }

  static void emit(String scenario, String result, String note) throws IOException {
    String line = "{\"client\":\"java\",\"version\":" + json(VERSION) + ",\"scenario\":" + json(scenario)
        + ",\"result\":" + json(result) + ",\"note\":" + json(note) + "}";
    System.out.println(line);
    if (out != null) { out.write(line + "\n"); out.flush(); }
  }

  static void run(String scenario, Scenario s) throws IOException {
    long start = System.nanoTime();
    ExecutorService ex = Executors.newSingleThreadExecutor(r -> { Thread t = new Thread(r); t.setDaemon(true); return t; });
    Future<?> f = ex.submit(() -> { s.run(); return null; });
    try {
      f.get(120, TimeUnit.SECONDS);
      emit(scenario, "pass", "");
    } catch (TimeoutException e) {
      f.cancel(true);
      emit(scenario, "fail", "timed out after 120s");
    } catch (ExecutionException e) {
      Throwable c = e.getCause();
      while (c instanceof ExecutionException || c instanceof CompletionException) c = c.getCause();
      if (c instanceof NotApplicable) { emit(scenario, "n/a", c.getMessage()); }
      else {
        c.printStackTrace();
        String note = c.getClass().getSimpleName() + ": " + c.getMessage();
        emit(scenario, "fail", note.length() > 400 ? note.substring(0, 400) : note);
      }
    } catch (InterruptedException e) {
      throw new RuntimeException(e);
    } finally {
      ex.shutdownNow();
    }
    System.err.printf("  [java %s] %s: %.1fs%n", VERSION, scenario, (System.nanoTime() - start) / 1e9);
  }

  static void check(boolean cond, String msg) { if (!cond) throw new AssertionError(msg); }

  // ---- records -------------------------------------------------------------------------------
  record Rec(String key, String value, List<String> headers) {}

  static List<Rec> records(int n, String tag) {
    List<Rec> rs = new ArrayList<>();
    for (int i = 0; i < n; i++)
      rs.add(new Rec("k" + (i % 4), tag + "-" + i, List.of("h", "1", "h", "2", "x", "y" + i)));
    return rs;
  }

  static byte[] b(String s) { return s == null ? null : s.getBytes(StandardCharsets.UTF_8); }
  static String s(byte[] b) { return b == null ? null : new String(b, StandardCharsets.UTF_8); }

  static Properties props(Object... kv) {
    Properties p = new Properties();
    p.put("bootstrap.servers", BOOTSTRAP);
    for (int i = 0; i < kv.length; i += 2) p.put(kv[i], String.valueOf(kv[i + 1]));
    return p;
  }

  static KafkaProducer<byte[], byte[]> producer(Object... kv) {
    Properties p = props(kv);
    p.putIfAbsent("linger.ms", "5");
    return new KafkaProducer<>(p, new ByteArraySerializer(), new ByteArraySerializer());
  }

  static KafkaConsumer<byte[], byte[]> consumer(Object... kv) {
    Properties p = props(kv);
    p.putIfAbsent("enable.auto.commit", "false");
    p.putIfAbsent("auto.offset.reset", "earliest");
    return new KafkaConsumer<>(p, new ByteArrayDeserializer(), new ByteArrayDeserializer());
  }

  static void send(Producer<byte[], byte[]> p, String t, List<Rec> rs, Integer partition, List<Long> ts) throws Exception {
    List<Future<RecordMetadata>> fs = new ArrayList<>();
    for (int i = 0; i < rs.size(); i++) {
      Rec r = rs.get(i);
      List<Header> hs = new ArrayList<>();
      for (int h = 0; h + 1 < r.headers().size(); h += 2) hs.add(new RecordHeader(r.headers().get(h), b(r.headers().get(h + 1))));
      fs.add(p.send(new ProducerRecord<>(t, partition, ts == null ? null : ts.get(i), b(r.key()), b(r.value()), hs)));
    }
    p.flush();
    for (Future<RecordMetadata> f : fs) f.get(30, TimeUnit.SECONDS);
  }

  static List<ConsumerRecord<byte[], byte[]>> read(Consumer<byte[], byte[]> c, int n) {
    List<ConsumerRecord<byte[], byte[]>> got = new ArrayList<>();
    long deadline = System.currentTimeMillis() + 20_000;
    while (got.size() < n && System.currentTimeMillis() < deadline) c.poll(Duration.ofMillis(200)).forEach(got::add);
    c.poll(Duration.ofMillis(300)).forEach(got::add);
    return got;
  }

  static List<ConsumerRecord<byte[], byte[]>> consumeAll(String t, int n, Integer onlyPartition, Object... kv) {
    try (KafkaConsumer<byte[], byte[]> c = consumer(kv)) {
      List<TopicPartition> tps = new ArrayList<>();
      if (onlyPartition != null) tps.add(new TopicPartition(t, onlyPartition));
      else for (PartitionInfo pi : c.partitionsFor(t)) tps.add(new TopicPartition(t, pi.partition()));
      c.assign(tps);
      c.seekToBeginning(tps);
      return read(c, n);
    }
  }

  static List<String> headers(ConsumerRecord<byte[], byte[]> r) {
    List<String> hs = new ArrayList<>();
    for (Header h : r.headers()) { hs.add(h.key()); hs.add(s(h.value())); }
    return hs;
  }

  static void same(List<ConsumerRecord<byte[], byte[]>> got, List<Rec> want) {
    check(got.size() == want.size(), "got " + got.size() + " records, want " + want.size());
    Map<String, ConsumerRecord<byte[], byte[]>> byValue = new HashMap<>();
    for (ConsumerRecord<byte[], byte[]> r : got) byValue.put(s(r.value()), r);
    for (Rec w : want) {
      ConsumerRecord<byte[], byte[]> r = byValue.get(w.value());
      check(r != null, "missing " + w.value());
      check(w.key().equals(s(r.key())) && w.headers().equals(headers(r)),
          w.value() + ": key " + s(r.key()) + " headers " + headers(r));
    }
  }

  static List<String> values(Collection<ConsumerRecord<byte[], byte[]>> rs) {
    List<String> v = new ArrayList<>();
    for (ConsumerRecord<byte[], byte[]> r : rs) v.add(s(r.value()));
    Collections.sort(v);
    return v;
  }

  static List<String> recValues(List<Rec> rs) {
    List<String> v = new ArrayList<>();
    for (Rec r : rs) v.add(r.value());
    Collections.sort(v);
    return v;
  }

  static void waitUntil(String what, long ms, java.util.function.BooleanSupplier f) throws InterruptedException {
    long deadline = System.currentTimeMillis() + ms;
    while (!f.getAsBoolean()) {
      if (System.currentTimeMillis() > deadline) throw new AssertionError("timed out after " + ms / 1000 + "s waiting for " + what);
      Thread.sleep(100);
    }
  }

  // ---- scenarios -----------------------------------------------------------------------------
  static void metadataAutocreate() throws Exception {
    String t = topic("auto");
    try (KafkaProducer<byte[], byte[]> p = producer()) {
      check(p.partitionsFor(t).size() == 3, "partitions " + p.partitionsFor(t));
      send(p, t, records(1, "a"), null, null);
    }
    try (KafkaConsumer<byte[], byte[]> c = consumer()) {
      check(c.listTopics().containsKey(t), "topic not listed");
    }
  }

  static void codec(String codec) throws Exception {
    String t = topic("codec-" + codec);
    List<Rec> want = records(20, codec);
    try (KafkaProducer<byte[], byte[]> p = producer("compression.type", codec)) {
      send(p, t, want, null, null);
    }
    same(consumeAll(t, 20, null), want);
  }

  static void keyed() throws Exception {
    String t = topic("keyed");
    List<Rec> rs = new ArrayList<>();
    for (int i = 0; i < 36; i++) rs.add(new Rec("key" + (i % 6), String.valueOf(i), List.of()));
    try (KafkaProducer<byte[], byte[]> p = producer()) { send(p, t, rs, null, null); }
    List<ConsumerRecord<byte[], byte[]>> got = consumeAll(t, 36, null);
    check(got.size() == 36, "consumed " + got.size());
    Map<String, Set<Integer>> parts = new HashMap<>();
    Map<String, Integer> last = new HashMap<>();
    got.sort(Comparator.comparingLong(ConsumerRecord::offset));
    for (ConsumerRecord<byte[], byte[]> r : got) {
      parts.computeIfAbsent(s(r.key()), k -> new HashSet<>()).add(r.partition());
      int v = Integer.parseInt(s(r.value()));
      Integer l = last.put(s(r.key()), v);
      check(l == null || l < v, "order of " + s(r.key()));
    }
    Set<Integer> used = new HashSet<>();
    for (Set<Integer> ps : parts.values()) { check(ps.size() == 1, "key -> partitions " + parts); used.addAll(ps); }
    check(used.size() > 1, "every key in one partition");
  }

  static void seekOffset() throws Exception {
    String t = topic("seek");
    try (KafkaProducer<byte[], byte[]> p = producer()) { send(p, t, records(20, "s"), 0, null); }
    try (KafkaConsumer<byte[], byte[]> c = consumer()) {
      TopicPartition tp = new TopicPartition(t, 0);
      c.assign(List.of(tp));
      c.seek(tp, 7);
      List<ConsumerRecord<byte[], byte[]>> got = read(c, 13);
      check(got.size() == 13 && got.get(0).offset() == 7 && s(got.get(0).value()).equals("s-7"), "from 7: " + got.size() + " records");
      check(c.endOffsets(List.of(tp)).get(tp) == 20 && c.beginningOffsets(List.of(tp)).get(tp) == 0, "watermarks");
    }
  }

  static void seekTimestamp() throws Exception {
    String t = topic("ts");
    long base = (System.currentTimeMillis() / 1000 - 3600) * 1000;
    List<Long> ts = new ArrayList<>();
    for (int i = 0; i < 20; i++) ts.add(base + i * 1000L);
    try (KafkaProducer<byte[], byte[]> p = producer()) { send(p, t, records(20, "t"), 0, ts); }
    try (KafkaConsumer<byte[], byte[]> c = consumer()) {
      TopicPartition tp = new TopicPartition(t, 0);
      OffsetAndTimestamp o = c.offsetsForTimes(Map.of(tp, base + 7500)).get(tp);
      check(o != null && o.offset() == 8 && o.timestamp() == base + 8000, "offsetsForTimes(+7.5s) = " + o);
      o = c.offsetsForTimes(Map.of(tp, base - 1000)).get(tp);
      check(o != null && o.offset() == 0, "offsetsForTimes(before) = " + o);
      o = c.offsetsForTimes(Map.of(tp, base + 60_000)).get(tp);
      check(o == null, "offsetsForTimes(after the last) = " + o);
      c.assign(List.of(tp));
      c.seek(tp, c.offsetsForTimes(Map.of(tp, base + 7500)).get(tp).offset());
      List<ConsumerRecord<byte[], byte[]>> got = read(c, 12);
      check(!got.isEmpty() && s(got.get(0).value()).equals("t-8") && got.get(0).timestamp() == base + 8000, "first after seek");
    }
  }

  static final class Member implements ConsumerRebalanceListener {
    final List<ConsumerRecord<byte[], byte[]>> got = Collections.synchronizedList(new ArrayList<>());
    volatile Set<TopicPartition> assigned = Set.of();
    volatile boolean stop;
    final Thread thread;
    volatile Throwable error;

    Member(String g, String t) {
      thread = new Thread(() -> {
        try (KafkaConsumer<byte[], byte[]> c = consumer("group.id", g, "enable.auto.commit", "true",
            "auto.commit.interval.ms", "200")) {
          c.subscribe(List.of(t), this);
          while (!stop) c.poll(Duration.ofMillis(200)).forEach(got::add);
          c.commitSync();
        } catch (Throwable e) { error = e; }
      });
      thread.setDaemon(true);
      thread.start();
    }
    public void onPartitionsRevoked(Collection<TopicPartition> ps) { assigned = Set.of(); }
    public void onPartitionsAssigned(Collection<TopicPartition> ps) { assigned = Set.copyOf(ps); }
    void close() throws InterruptedException {
      stop = true;
      thread.join(30_000);
      if (error != null) throw new AssertionError("member: " + error, error);
    }
  }

  static void group() throws Exception {
    String t = topic("group"), g = topic("g");
    try (KafkaProducer<byte[], byte[]> p = producer()) {
      p.partitionsFor(t);
      Member a = new Member(g, t);
      waitUntil("first member assigned 3 partitions", 30_000, () -> a.assigned.size() == 3);
      Member b = new Member(g, t);
      waitUntil("rebalance to 2 members", 30_000,
          () -> !a.assigned.isEmpty() && !b.assigned.isEmpty() && a.assigned.size() + b.assigned.size() == 3);
      List<Rec> want = records(30, "m");
      send(p, t, want, null, null);
      waitUntil("30 records", 30_000, () -> a.got.size() + b.got.size() >= 30);
      Thread.sleep(500);
      check(!a.got.isEmpty() && !b.got.isEmpty(), "a member got nothing");
      List<ConsumerRecord<byte[], byte[]>> all = new ArrayList<>(a.got);
      all.addAll(b.got);
      check(values(all).equals(recValues(want)), "records differ: " + values(all));
      a.close();
      b.close();
      List<Rec> more = records(10, "r");
      send(p, t, more, null, null);
      Member c = new Member(g, t);
      try {
        waitUntil("resumed member reads 10", 30_000, () -> c.got.size() >= 10);
        Thread.sleep(500);
        check(values(c.got).equals(recValues(more)), "resumed read " + values(c.got));
      } finally { c.close(); }
    }
  }

  static void idempotent() throws Exception {
    String t = topic("idem");
    List<Rec> want = records(30, "i");
    try (KafkaProducer<byte[], byte[]> p = producer("enable.idempotence", "true", "acks", "all")) {
      for (int i = 0; i < 3; i++) send(p, t, want.subList(i * 10, i * 10 + 10), null, null);
    }
    same(consumeAll(t, 30, null), want);
  }

  static Admin admin() { return Admin.create(props()); }

  @SuppressWarnings("unchecked")
  static Map<String, TopicDescription> describeTopics(Admin a, String t) throws Exception {
    DescribeTopicsResult r = a.describeTopics(List.of(t));
    java.lang.reflect.Method m;
    try { m = r.getClass().getMethod("allTopicNames"); } catch (NoSuchMethodException e) { m = r.getClass().getMethod("all"); }
    return ((KafkaFuture<Map<String, TopicDescription>>) m.invoke(r)).get();
  }

  static void adminTopics() throws Exception {
    String t = topic("admin");
    try (Admin a = admin()) {
      a.createTopics(List.of(new NewTopic(t, 2, (short) 1).configs(Map.of("retention.ms", "3600000")))).all().get();
      try {
        a.createTopics(List.of(new NewTopic(t, 2, (short) 1))).all().get();
        throw new AssertionError("creating it twice succeeded");
      } catch (ExecutionException e) {
        check(e.getCause() instanceof org.apache.kafka.common.errors.TopicExistsException, "second create: " + e.getCause());
      }
      check(describeTopics(a, t).get(t).partitions().size() == 2, "2 partitions");
      a.createPartitions(Map.of(t, NewPartitions.increaseTo(4))).all().get();
      check(describeTopics(a, t).get(t).partitions().size() == 4, "4 partitions after grow");
      a.deleteTopics(List.of(t)).all().get();
      waitUntil("topic gone", 10_000, () -> {
        try { return !a.listTopics().names().get().contains(t); } catch (Exception e) { return false; }
      });
    }
  }

  static String config(Admin a, ConfigResource r, String name) throws Exception {
    ConfigEntry e = a.describeConfigs(List.of(r)).all().get().get(r).get(name);
    return e == null ? null : e.value();
  }

  static void adminConfigs() throws Exception {
    String t = topic("cfg");
    try (Admin a = admin()) {
      a.createTopics(List.of(new NewTopic(t, 1, (short) 1))).all().get();
      ConfigResource r = new ConfigResource(ConfigResource.Type.TOPIC, t);
      check("delete".equals(config(a, r, "cleanup.policy")), "cleanup.policy " + config(a, r, "cleanup.policy"));
      a.incrementalAlterConfigs(Map.of(r, List.of(new AlterConfigOp(new ConfigEntry("retention.ms", "12345678"),
          AlterConfigOp.OpType.SET)))).all().get();
      check("12345678".equals(config(a, r, "retention.ms")), "retention.ms after alter " + config(a, r, "retention.ms"));
      ConfigResource broker = new ConfigResource(ConfigResource.Type.BROKER, "1");
      check(!a.describeConfigs(List.of(broker)).all().get().get(broker).entries().isEmpty(), "no broker configs");
    }
  }

  static String groupState(ConsumerGroupDescription d) throws Exception {
    for (String name : new String[] {"groupState", "state"}) {
      try { return String.valueOf(d.getClass().getMethod(name).invoke(d)); } catch (NoSuchMethodException e) { /* next */ }
    }
    return "?";
  }

  static void groupAdmin() throws Exception {
    String t = topic("gadmin"), g = topic("ga");
    try (KafkaProducer<byte[], byte[]> p = producer()) { send(p, t, records(10, "g"), null, null); }
    try (Admin a = admin()) {
      Member m = new Member(g, t);
      try {
        waitUntil("member reads 10", 30_000, () -> m.got.size() >= 10);
        ConsumerGroupDescription d = a.describeConsumerGroups(List.of(g)).all().get().get(g);
        check(groupState(d).equalsIgnoreCase("stable") && d.members().size() == 1, "describe: " + d);
      } finally { m.close(); }
      java.util.concurrent.Callable<Long> committed = () -> {
        long sum = 0;
        for (OffsetAndMetadata o : a.listConsumerGroupOffsets(g).partitionsToOffsetAndMetadata().get().values()) sum += o.offset();
        return sum;
      };
      check(committed.call() == 10, "committed sum " + committed.call());
      boolean listed = false;
      for (ConsumerGroupListing l : a.listConsumerGroups().all().get()) listed |= l.groupId().equals(g);
      check(listed, "group not listed");
      Map<TopicPartition, OffsetAndMetadata> reset = new HashMap<>();
      for (int i = 0; i < 3; i++) reset.put(new TopicPartition(t, i), new OffsetAndMetadata(0));
      a.alterConsumerGroupOffsets(g, reset).all().get();
      check(committed.call() == 0, "after reset committed sum " + committed.call());
      a.deleteConsumerGroups(List.of(g)).all().get();
      for (ConsumerGroupListing l : a.listConsumerGroups().all().get()) check(!l.groupId().equals(g), "still listed after delete");
    }
  }

  static void transactions() throws Exception {
    String t = topic("txn");
    try (KafkaProducer<byte[], byte[]> p = producer("transactional.id", topic("tx"))) {
      p.initTransactions();
      for (String tag : List.of("c1", "ab", "c2")) {
        p.beginTransaction();
        send(p, t, records(5, tag), 0, null);
        if (tag.equals("ab")) p.abortTransaction(); else p.commitTransaction();
      }
    }
    List<ConsumerRecord<byte[], byte[]>> got = consumeAll(t, 10, 0, "isolation.level", "read_committed");
    List<String> want = new ArrayList<>(recValues(records(5, "c1")));
    want.addAll(recValues(records(5, "c2")));
    List<String> gotValues = new ArrayList<>();
    for (ConsumerRecord<byte[], byte[]> r : got) gotValues.add(s(r.value()));
    check(gotValues.equals(want), "read_committed " + gotValues);
    check(consumeAll(t, 15, 0, "isolation.level", "read_uncommitted").size() == 15, "read_uncommitted");
  }

  public static void main(String[] args) throws Exception {
    String path = System.getenv("MATRIX_OUT");
    if (path != null && !path.isEmpty()) out = new FileWriter(path, true);
    run("metadata_autocreate", Runner::metadataAutocreate);
    for (String c : List.of("none", "gzip", "snappy", "lz4", "zstd")) run("codec_" + c, () -> codec(c));
    run("keyed_partitioning", Runner::keyed);
    run("seek_offset", Runner::seekOffset);
    run("seek_timestamp", Runner::seekTimestamp);
    run("group_rebalance_commit", Runner::group);
    run("idempotent_produce", Runner::idempotent);
    run("admin_topics", Runner::adminTopics);
    run("admin_configs", Runner::adminConfigs);
    run("group_admin", Runner::groupAdmin);
    run("transactions", Runner::transactions);
    if (out != null) out.close();
    System.exit(0);
  }
}
