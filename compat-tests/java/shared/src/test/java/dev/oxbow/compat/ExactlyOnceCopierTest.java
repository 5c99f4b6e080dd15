package dev.oxbow.compat;

import static dev.oxbow.compat.Clients.*;
import static org.junit.jupiter.api.Assertions.*;

import java.io.BufferedReader;
import java.io.File;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.*;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.TopicPartition;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Exactly-once consume-transform-produce: {@link ExactlyOnceCopier} runs as a separate JVM and
 * is killed with SIGKILL several times (at random points, and right after it wrote copies inside a
 * transaction it has not committed), each time replaced by a new process
 * with the same transactional.id and group. The output must hold every input record exactly
 * once, in order per partition, and the group's committed offsets must be the input's end.
 */
@Timeout(420)
class ExactlyOnceCopierTest {
  static final String IN = "eos-in";
  static final String OUT = "eos-out";
  static final String GROUP = "eos-copier";
  static final int PARTITIONS = 3;
  static final int N = 5000;
  static final int KILLS = 4;

  OxbowBroker broker;
  Admin admin;
  Process copier;
  final List<Path> copierLogs = new ArrayList<>();

  @BeforeEach
  void start() throws Exception {
    broker = new OxbowBroker();
    admin = admin(broker.bootstrap);
    createTopic(admin, IN, PARTITIONS);
    createTopic(admin, OUT, PARTITIONS);
  }

  @AfterEach
  void stop() throws Exception {
    if (copier != null) copier.destroyForcibly().waitFor(10, TimeUnit.SECONDS);
    if (admin != null) admin.close(Duration.ofSeconds(5));
    broker.close();
  }

  /** Lines "open N" the current copier printed: it has written copies inside an open transaction. */
  final AtomicLong openSignals = new AtomicLong();

  Process startCopier(int instance) throws Exception {
    Path log = broker.dir.resolve("copier-" + instance + ".log");
    copierLogs.add(log);
    List<String> cmd = List.of(javaBinary(), "-cp", testClasspath(), ExactlyOnceCopier.class.getName(),
        broker.bootstrap, IN, OUT, GROUP, "eos-copier-txn");
    ProcessBuilder pb = new ProcessBuilder(cmd);
    pb.redirectErrorStream(true);
    pb.redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null")));
    Process p = pb.start();
    // Copy the copier's output to its log, noting each "open" line as it comes.
    Thread reader = new Thread(() -> {
      try (BufferedReader in = new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8));
           PrintWriter w = new PrintWriter(Files.newBufferedWriter(log, StandardCharsets.UTF_8), true)) {
        String line;
        while ((line = in.readLine()) != null) {
          w.println(line);
          if (line.startsWith("open ")) openSignals.incrementAndGet();
        }
      } catch (IOException ignored) {
        // the copier was killed
      }
    });
    reader.setDaemon(true);
    reader.start();
    return p;
  }

  /** Waits for the copier's next "open" line: it has just written copies in an open transaction. */
  void awaitOpenTransaction(String what) throws Exception {
    long seen = openSignals.get();
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
    while (openSignals.get() == seen) {
      if (!copier.isAlive()) fail("copier exited by itself (exit " + copier.exitValue() + ") while " + what + diagnostics());
      if (System.nanoTime() > deadline) fail("copier opened no transaction within 60 s while " + what + diagnostics());
      Thread.sleep(1);
    }
  }

  String logTail(Path log, int lines) {
    try {
      List<String> all = Files.readAllLines(log, StandardCharsets.UTF_8);
      return String.join("\n", all.subList(Math.max(0, all.size() - lines), all.size()));
    } catch (Exception e) {
      return "(no log: " + e + ")";
    }
  }

  String diagnostics() {
    StringBuilder sb = new StringBuilder();
    for (Path log : copierLogs) sb.append("\n--- ").append(log.getFileName()).append(" (tail) ---\n").append(logTail(log, 25));
    sb.append("\n--- broker stderr (tail) ---\n").append(broker.stderrTail(30));
    return sb.toString();
  }

  /** The group's committed offsets (no pending transactional ones), summed over the input partitions. */
  long committedProgress() throws Exception {
    Map<TopicPartition, OffsetAndMetadata> m = admin.listConsumerGroupOffsets(GROUP).partitionsToOffsetAndMetadata().get(30, TimeUnit.SECONDS);
    long sum = 0;
    for (Map.Entry<TopicPartition, OffsetAndMetadata> e : m.entrySet()) {
      if (e.getKey().topic().equals(IN) && e.getValue() != null) sum += e.getValue().offset();
    }
    return sum;
  }

  void awaitProgress(long target, Duration timeout, String what) throws Exception {
    long deadline = System.nanoTime() + timeout.toNanos();
    long progress;
    while ((progress = committedProgress()) < target) {
      if (!copier.isAlive()) fail("copier exited by itself (exit " + copier.exitValue() + ") while " + what + diagnostics());
      if (System.nanoTime() > deadline) fail("copier committed " + progress + " of " + target + " input records within " + timeout + " while " + what + diagnostics());
      Thread.sleep(50);
    }
  }

  @Test
  void copierKilledAndRestartedCopiesEveryRecordExactlyOnce() throws Exception {
    // Input: N records over 3 partitions from the idempotent producer, per-partition order known.
    Map<Integer, TreeMap<Long, String>> input = new TreeMap<>();
    try (KafkaProducer<String, String> producer = idempotentProducer(broker.bootstrap)) {
      List<Future<RecordMetadata>> fs = new ArrayList<>();
      for (int i = 0; i < N; i++) fs.add(producer.send(new ProducerRecord<>(IN, "k" + (i % 61), "v" + i)));
      for (int i = 0; i < N; i++) {
        RecordMetadata md = fs.get(i).get(30, TimeUnit.SECONDS);
        input.computeIfAbsent(md.partition(), p -> new TreeMap<>()).put(md.offset(), "v" + i);
      }
    }
    assertEquals(PARTITIONS, input.size(), "61 keys should reach all 3 partitions");
    List<TopicPartition> inTps = partitions(IN, PARTITIONS);
    Map<TopicPartition, Long> inEnd;
    try (KafkaConsumer<String, String> c = consumer(broker.bootstrap, READ_COMMITTED)) {
      inEnd = c.endOffsets(inTps);
    }

    long seed = System.nanoTime();
    Random random = new Random(seed);
    String context = " (seed " + seed + ", client " + clientVersion() + ")";
    for (int k = 0; k < KILLS; k++) {
      copier = startCopier(k);
      long target = (long) N * (k + 1) / (KILLS + 2);
      awaitProgress(target, Duration.ofSeconds(90), "waiting for " + target + " committed records before kill " + (k + 1) + context);
      if (k % 2 == 0) {
        Thread.sleep(random.nextInt(150)); // anywhere: between transactions, in one, in a commit
      } else {
        // Right after it wrote copies in a transaction it has not committed.
        awaitOpenTransaction("waiting to kill " + (k + 1) + " inside a transaction" + context);
      }
      copier.destroyForcibly(); // SIGKILL: no close(), no abort, whatever was in flight stays in flight
      assertTrue(copier.waitFor(10, TimeUnit.SECONDS), "copier did not die after SIGKILL");
      long progress = committedProgress();
      assertTrue(progress < N, "kill " + (k + 1) + " came after the copy had finished (" + progress + " committed): "
          + "the test did not exercise a restart mid-stream" + context);
    }
    copier = startCopier(KILLS);
    awaitProgress(N, Duration.ofSeconds(120), "waiting for the last copier to finish" + context);
    copier.destroyForcibly();
    copier.waitFor(10, TimeUnit.SECONDS);

    // The group's committed offsets are the input's end offsets.
    Map<TopicPartition, OffsetAndMetadata> committed = admin.listConsumerGroupOffsets(GROUP).partitionsToOffsetAndMetadata().get(30, TimeUnit.SECONDS);
    for (TopicPartition tp : inTps) {
      assertNotNull(committed.get(tp), "no committed offset for " + tp + context);
      assertEquals(inEnd.get(tp), committed.get(tp).offset(), "committed offset of " + tp + " must be the input end offset" + context);
    }

    // Output under read_committed: each input record exactly once, in input order per partition.
    List<TopicPartition> outTps = partitions(OUT, PARTITIONS);
    awaitNoOpenTransactions(admin, outTps, Duration.ofSeconds(30));
    Map<Integer, List<ConsumerRecord<String, String>>> out;
    try (KafkaConsumer<String, String> rc = consumer(broker.bootstrap, READ_COMMITTED)) {
      out = readToEnd(rc, outTps, Duration.ofSeconds(60));
    }
    int total = 0;
    for (int p = 0; p < PARTITIONS; p++) {
      List<String> want = new ArrayList<>(input.get(p).values());
      List<String> got = new ArrayList<>();
      for (ConsumerRecord<String, String> r : out.get(p)) got.add(r.value());
      total += got.size();
      if (!want.equals(got)) {
        Set<String> seen = new HashSet<>();
        List<String> dups = new ArrayList<>();
        for (String v : got) if (!seen.add(v)) dups.add(v);
        Set<String> missing = new TreeSet<>(want);
        missing.removeAll(got);
        fail("output partition " + p + ": " + got.size() + " records for " + want.size() + " inputs; duplicates "
            + dups.subList(0, Math.min(10, dups.size())) + " (" + dups.size() + "), missing " + missing.size()
            + (dups.isEmpty() && missing.isEmpty() ? ", order differs" : "") + context);
      }
    }
    assertEquals(N, total, "records in the output under read_committed" + context);

    // read_uncommitted sees the aborted copies as well, if any kill landed inside a transaction.
    try (KafkaConsumer<String, String> ru = consumer(broker.bootstrap, READ_UNCOMMITTED)) {
      int raw = allValues(readToEnd(ru, outTps, Duration.ofSeconds(60))).size();
      assertTrue(raw > N, "kills inside open transactions must have left aborted copies in the output log, "
          + "which read_committed skipped: read_uncommitted sees " + raw + " records" + context);
      System.out.println("exactly-once copier" + context + ": " + KILLS + " kills, " + (raw - N)
          + " aborted copies in the output log, " + N + " committed");
    }
  }
}
