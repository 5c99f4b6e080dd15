package dev.oxbow.streams;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.fail;

import java.io.File;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Random;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.LongDeserializer;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Kafka Streams word count (groupBy + materialized count, output to a topic) with
 * exactly_once_v2 while the Streams JVM or the broker is kill -9ed at random points and
 * restarted. At the end the latest committed count of every word (read_committed) is exactly
 * the number of times it was produced, and the committed counts of a word never go down.
 * The random seed is printed; rerun one with -Doxbow.seed=N.
 */
class ExactlyOnceWordCountTest {
  static final String INPUT = "words";
  static final String OUTPUT = "word-counts";
  static final int RECORDS = 20_000;
  static final int BATCH = 400;
  static final int VOCABULARY = 40;

  Path dir;
  OxbowBroker broker;
  StreamsApp app;
  Random random;

  @BeforeEach
  void setUp() throws Exception {
    long seed = Long.getLong("oxbow.seed", System.nanoTime());
    System.out.println("seed " + seed + " (rerun with -Doxbow.seed=" + seed + ")");
    random = new Random(seed);
    dir = Files.createTempDirectory("oxbow-streams");
    broker = new OxbowBroker(dir,
        "transaction.abort.timed.out.transaction.cleanup.interval.ms=1000");
    Properties p = new Properties();
    p.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, broker.bootstrap);
    try (Admin admin = Admin.create(p)) {
      admin.createTopics(List.of(new NewTopic(INPUT, 3, (short) 1), new NewTopic(OUTPUT, 3, (short) 1)))
          .all().get(30, TimeUnit.SECONDS);
    }
  }

  @AfterEach
  void tearDown() throws Exception {
    if (app != null) app.kill();
    if (broker != null) broker.close();
    deleteTree(dir);
  }

  @Test
  @Timeout(value = 8, unit = TimeUnit.MINUTES)
  void exactCountsWhenTheStreamsAppIsKilledAndRestarted() throws Exception {
    app = new StreamsApp(broker, dir.resolve("state"), "wordcount-app-kills", dir.resolve("app.log"));
    app.start();
    app.awaitRunning();
    Producing producing = new Producing(broker.bootstrap, random.nextLong());
    for (int kill = 1; kill <= 4; kill++) {
      Thread.sleep(200 + random.nextInt(2_800)); // mostly while it catches up on the backlog
      app.assertAlive();
      app.kill();
      boolean wipe = kill == 3;
      System.out.println("killed the streams app (" + kill + "/4)" + (wipe ? ", wiping its state dir" : ""));
      if (wipe) deleteTree(dir.resolve("state"));
      app.start();
      app.awaitRunning();
    }
    verify(producing);
  }

  @Test
  @Timeout(value = 8, unit = TimeUnit.MINUTES)
  void exactCountsWhenTheBrokerIsKilledAndRestarted() throws Exception {
    app = new StreamsApp(broker, dir.resolve("state"), "wordcount-broker-kills", dir.resolve("app.log"));
    app.start();
    app.awaitRunning();
    Producing producing = new Producing(broker.bootstrap, random.nextLong());
    for (int kill = 1; kill <= 3; kill++) {
      Thread.sleep(2_000 + random.nextInt(5_000));
      app.assertAlive();
      broker.kill9AndRestart();
      System.out.println("kill -9ed and restarted the broker (" + kill + "/3)");
    }
    verify(producing);
  }

  /** Waits for the input, checks it, then waits for the output counts to be exact. */
  void verify(Producing producing) throws Exception {
    Map<String, Long> expected = producing.await();
    app.assertAlive();
    checkInput();
    Properties p = consumerProps();
    p.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed");
    p.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, LongDeserializer.class.getName());
    Map<String, Long> latest = new TreeMap<>();
    long committedUpdates = 0;
    try (KafkaConsumer<String, Long> c = new KafkaConsumer<>(p)) {
      List<TopicPartition> parts = List.of(new TopicPartition(OUTPUT, 0), new TopicPartition(OUTPUT, 1), new TopicPartition(OUTPUT, 2));
      c.assign(parts);
      c.seekToBeginning(parts);
      long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(180);
      long matchedAt = -1;
      while (true) {
        for (ConsumerRecord<String, Long> r : c.poll(Duration.ofMillis(500))) {
          committedUpdates++;
          Long before = latest.put(r.key(), r.value());
          if (before != null && r.value() < before) {
            fail("committed count of " + r.key() + " went down from " + before + " to " + r.value() + " at " + r.partition() + "@" + r.offset() + app.diagnostics());
          }
          Long want = expected.get(r.key());
          if (want == null || r.value() > want) {
            fail("word " + r.key() + " counted " + r.value() + " times, produced " + want + " times (double counting)" + app.diagnostics());
          }
        }
        if (latest.equals(expected)) {
          // Exact: keep reading a little longer so a late duplicate would still show up.
          if (matchedAt < 0) matchedAt = System.nanoTime();
          if (System.nanoTime() - matchedAt > TimeUnit.SECONDS.toNanos(5)) break;
          continue;
        }
        app.assertAlive();
        if (System.nanoTime() > deadline) {
          Map<String, String> diff = new TreeMap<>();
          for (Map.Entry<String, Long> e : expected.entrySet()) {
            Long got = latest.get(e.getKey());
            if (!e.getValue().equals(got)) diff.put(e.getKey(), "expected " + e.getValue() + ", got " + got);
          }
          fail("output counts not exact 180 s after the input was complete (" + diff.size() + " of " + expected.size()
              + " words differ, " + committedUpdates + " committed updates read): " + diff + app.diagnostics());
        }
      }
    }
    assertEquals(expected, latest);
    System.out.println("exact counts for " + expected.size() + " words after " + committedUpdates + " committed updates");
  }

  /** The input topic holds every produced record exactly once (keys 0..RECORDS-1). */
  void checkInput() {
    Properties p = consumerProps();
    p.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
    Set<String> keys = new HashSet<>();
    int total = 0;
    try (KafkaConsumer<String, String> c = new KafkaConsumer<>(p)) {
      List<TopicPartition> parts = List.of(new TopicPartition(INPUT, 0), new TopicPartition(INPUT, 1), new TopicPartition(INPUT, 2));
      c.assign(parts);
      c.seekToBeginning(parts);
      Map<TopicPartition, Long> end = c.endOffsets(parts, Duration.ofSeconds(30));
      long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
      while (parts.stream().anyMatch(tp -> c.position(tp) < end.get(tp))) {
        if (System.nanoTime() > deadline) fail("could not read the input topic to its end " + end + app.diagnostics());
        for (ConsumerRecord<String, String> r : c.poll(Duration.ofMillis(500))) {
          total++;
          keys.add(r.key());
        }
      }
    }
    assertEquals(RECORDS, total, "records in the input topic (the idempotent input producer's, before Streams)");
    assertEquals(RECORDS, keys.size(), "distinct records in the input topic");
  }

  Properties consumerProps() {
    Properties p = new Properties();
    p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, broker.bootstrap);
    p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
    p.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
    p.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
    return p;
  }

  /**
   * RECORDS words from a fixed vocabulary (key: the record's number, value: the word), produced
   * by an idempotent acks=all producer in batches of BATCH with pauses, on a background thread.
   */
  static final class Producing {
    final Map<String, Long> expected = new TreeMap<>();
    final CompletableFuture<Void> done;

    Producing(String bootstrap, long seed) {
      Random r = new Random(seed);
      List<String> words = new ArrayList<>();
      for (int i = 0; i < RECORDS; i++) {
        String w = "word-" + String.format("%02d", r.nextInt(VOCABULARY));
        words.add(w);
        expected.merge(w, 1L, Long::sum);
      }
      done = CompletableFuture.runAsync(() -> {
        Properties p = new Properties();
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ProducerConfig.ACKS_CONFIG, "all");
        p.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, "true");
        p.put(ProducerConfig.LINGER_MS_CONFIG, "5");
        p.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        p.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        try (KafkaProducer<String, String> producer = new KafkaProducer<>(p)) {
          for (int start = 0; start < RECORDS; start += BATCH) {
            List<Future<RecordMetadata>> acks = new ArrayList<>();
            for (int i = start; i < Math.min(RECORDS, start + BATCH); i++) {
              acks.add(producer.send(new ProducerRecord<>(INPUT, Integer.toString(i), words.get(i))));
            }
            producer.flush();
            for (Future<RecordMetadata> a : acks) a.get();
            Thread.sleep(400);
          }
        } catch (Exception e) {
          throw new RuntimeException("input producer failed", e);
        }
      });
    }

    Map<String, Long> await() throws Exception {
      done.get(240, TimeUnit.SECONDS);
      System.out.println("produced " + RECORDS + " input records");
      return expected;
    }
  }

  /** The Streams app as its own JVM (WordCountMain on the test classpath), killed with SIGKILL. */
  static final class StreamsApp {
    final OxbowBroker broker;
    final Path stateDir;
    final String appId;
    final Path log;
    Process process;
    long logStart;

    StreamsApp(OxbowBroker broker, Path stateDir, String appId, Path log) {
      this.broker = broker;
      this.stateDir = stateDir;
      this.appId = appId;
      this.log = log;
    }

    void start() throws IOException {
      logStart = Files.exists(log) ? Files.size(log) : 0;
      String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
      process = new ProcessBuilder(java, "-Xmx256m", "-cp", System.getProperty("java.class.path"),
          WordCountMain.class.getName(), broker.bootstrap, stateDir.toString(), appId, INPUT, OUTPUT)
          .redirectErrorStream(true)
          .redirectOutput(ProcessBuilder.Redirect.appendTo(log.toFile()))
          .redirectInput(new File("/dev/null"))
          .start();
    }

    void kill() throws InterruptedException {
      process.destroyForcibly().waitFor(30, TimeUnit.SECONDS);
    }

    void assertAlive() {
      if (!process.isAlive()) fail("the streams app exited by itself with " + process.exitValue() + diagnostics());
    }

    /** Waits until this run of the app logs its first REBALANCING -> RUNNING. */
    void awaitRunning() throws Exception {
      long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(90);
      while (System.nanoTime() < deadline) {
        assertAlive();
        if (thisRunsLog().contains(WordCountMain.STATE_MARK + "REBALANCING -> RUNNING")) return;
        Thread.sleep(100);
      }
      fail("the streams app did not reach RUNNING within 90 s" + diagnostics());
    }

    String thisRunsLog() throws IOException {
      byte[] all = Files.readAllBytes(log);
      return new String(all, (int) logStart, all.length - (int) logStart, StandardCharsets.UTF_8);
    }

    String diagnostics() {
      String appTail;
      try {
        List<String> lines = Files.readAllLines(log, StandardCharsets.UTF_8);
        appTail = String.join("\n", lines.subList(Math.max(0, lines.size() - 60), lines.size()));
      } catch (IOException e) {
        appTail = "(no app log: " + e + ")";
      }
      return "\n--- streams app log tail ---\n" + appTail + "\n--- broker stderr tail ---\n" + broker.stderrTail();
    }
  }

  static void deleteTree(Path root) throws IOException {
    if (root == null || !Files.exists(root)) return;
    try (Stream<Path> files = Files.walk(root)) {
      files.sorted(Comparator.reverseOrder()).forEach(f -> f.toFile().delete());
    }
  }
}
