package dev.oxbow.compat;

import static org.junit.jupiter.api.Assertions.*;

import java.io.File;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.*;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.ListOffsetsOptions;
import org.apache.kafka.clients.admin.ListOffsetsResult;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.common.IsolationLevel;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;

/**
 * Client factories and helpers shared by the transaction tests. These sources compile against
 * every client version in this build (see ../pom.xml), so they use only APIs both have.
 */
final class Clients {
  static final String READ_COMMITTED = "read_committed";
  static final String READ_UNCOMMITTED = "read_uncommitted";

  private Clients() {}

  /** The kafka-clients version on the classpath, e.g. "4.4.0" or "3.9.1". */
  static String clientVersion() {
    // kafka/kafka-version.properties is in every kafka-clients jar (AppInfoParser moved in 4.x).
    try (java.io.InputStream in = KafkaProducer.class.getResourceAsStream("/kafka/kafka-version.properties")) {
      Properties p = new Properties();
      p.load(in);
      return p.getProperty("version");
    } catch (Exception e) {
      throw new IllegalStateException("no kafka/kafka-version.properties in kafka-clients", e);
    }
  }

  static int clientMajor() {
    return Integer.parseInt(clientVersion().split("\\.")[0]);
  }

  /**
   * Kafka 4.x producers use transactions V2 (KIP-890: partitions added by the broker, epoch bumped
   * at every commit/abort) when the broker finalizes transaction.version >= 2; 3.x producers
   * always use V1.
   */
  static boolean clientUsesTransactionsV2() {
    return clientMajor() >= 4;
  }

  static Admin admin(String bootstrap) {
    return Admin.create(Map.of(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap));
  }

  static void createTopic(Admin admin, String topic, int partitions) throws Exception {
    admin.createTopics(List.of(new NewTopic(topic, partitions, (short) 1))).all().get(30, TimeUnit.SECONDS);
  }

  static List<TopicPartition> partitions(String topic, int n) {
    List<TopicPartition> tps = new ArrayList<>();
    for (int p = 0; p < n; p++) tps.add(new TopicPartition(topic, p));
    return tps;
  }

  static Properties producerProps(String bootstrap) {
    Properties p = new Properties();
    p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
    p.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
    p.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
    return p;
  }

  /** The default producer: idempotent, acks=all, no transactional.id. */
  static KafkaProducer<String, String> idempotentProducer(String bootstrap) {
    Properties p = producerProps(bootstrap);
    p.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, "true");
    return new KafkaProducer<>(p);
  }

  static KafkaProducer<String, String> transactionalProducer(String bootstrap, String transactionalId, Map<String, Object> extra) {
    Properties p = producerProps(bootstrap);
    p.put(ProducerConfig.TRANSACTIONAL_ID_CONFIG, transactionalId);
    // Bounded: a broker that never answers fails the test instead of hanging it for a minute.
    p.put(ProducerConfig.MAX_BLOCK_MS_CONFIG, "30000");
    p.putAll(extra);
    return new KafkaProducer<>(p);
  }

  static KafkaProducer<String, String> transactionalProducer(String bootstrap, String transactionalId) {
    return transactionalProducer(bootstrap, transactionalId, Map.of());
  }

  /** A consumer without a group (assign + seek), at the given isolation level. */
  static KafkaConsumer<String, String> consumer(String bootstrap, String isolation) {
    Properties p = new Properties();
    p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
    p.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
    p.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
    p.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, isolation);
    p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
    p.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
    return new KafkaConsumer<>(p);
  }

  /**
   * Everything the consumer's isolation level lets it read from the start of each partition up to
   * its end offset (the last stable offset under read_committed, the high watermark otherwise),
   * as partition -> records in offset order. Fails if the end is not reached within the timeout.
   */
  static Map<Integer, List<ConsumerRecord<String, String>>> readToEnd(
      KafkaConsumer<String, String> consumer, Collection<TopicPartition> tps, Duration timeout) {
    consumer.assign(tps);
    consumer.seekToBeginning(tps);
    Map<TopicPartition, Long> end = consumer.endOffsets(tps);
    Map<Integer, List<ConsumerRecord<String, String>>> out = new TreeMap<>();
    for (TopicPartition tp : tps) out.put(tp.partition(), new ArrayList<>());
    long deadline = System.nanoTime() + timeout.toNanos();
    while (!reached(consumer, end)) {
      assertTrue(System.nanoTime() < deadline, () -> "consumer did not reach its end offsets "
          + end + " within " + timeout + "; positions " + positions(consumer, end.keySet()));
      for (ConsumerRecord<String, String> r : consumer.poll(Duration.ofMillis(200))) out.get(r.partition()).add(r);
    }
    return out;
  }

  /** partition -> end offset, from ListOffsets(latest) at the given isolation level. */
  static Map<TopicPartition, Long> endOffsets(Admin admin, Collection<TopicPartition> tps, IsolationLevel isolation) throws Exception {
    Map<TopicPartition, OffsetSpec> req = new HashMap<>();
    for (TopicPartition tp : tps) req.put(tp, OffsetSpec.latest());
    Map<TopicPartition, ListOffsetsResult.ListOffsetsResultInfo> res =
        admin.listOffsets(req, new ListOffsetsOptions(isolation)).all().get(30, TimeUnit.SECONDS);
    Map<TopicPartition, Long> out = new TreeMap<>(Comparator.comparing(TopicPartition::toString));
    res.forEach((tp, info) -> out.put(tp, info.offset()));
    return out;
  }

  /**
   * Waits until no transaction is open on the partitions: the last stable offset (read_committed
   * end) equals the high watermark. commitTransaction()/abortTransaction() return once the
   * coordinator has decided; the markers reach the partitions right after.
   */
  static void awaitNoOpenTransactions(Admin admin, Collection<TopicPartition> tps, Duration timeout) throws Exception {
    long deadline = System.nanoTime() + timeout.toNanos();
    while (true) {
      Map<TopicPartition, Long> lso = endOffsets(admin, tps, IsolationLevel.READ_COMMITTED);
      Map<TopicPartition, Long> hw = endOffsets(admin, tps, IsolationLevel.READ_UNCOMMITTED);
      if (lso.equals(hw)) return;
      if (System.nanoTime() > deadline) {
        fail("transactions still open after " + timeout + ": last stable offsets " + lso + ", high watermarks " + hw);
      }
      Thread.sleep(100);
    }
  }

  static boolean reached(KafkaConsumer<String, String> consumer, Map<TopicPartition, Long> end) {
    for (Map.Entry<TopicPartition, Long> e : end.entrySet()) {
      if (consumer.position(e.getKey(), Duration.ofSeconds(10)) < e.getValue()) return false;
    }
    return true;
  }

  static Map<TopicPartition, Long> positions(KafkaConsumer<String, String> consumer, Collection<TopicPartition> tps) {
    Map<TopicPartition, Long> m = new TreeMap<>(Comparator.comparing(TopicPartition::toString));
    for (TopicPartition tp : tps) m.put(tp, consumer.position(tp, Duration.ofSeconds(10)));
    return m;
  }

  /** Values in offset order, per partition. */
  static Map<Integer, List<String>> values(Map<Integer, List<ConsumerRecord<String, String>>> records) {
    Map<Integer, List<String>> m = new TreeMap<>();
    records.forEach((p, rs) -> {
      List<String> vs = new ArrayList<>();
      for (ConsumerRecord<String, String> r : rs) vs.add(r.value());
      m.put(p, vs);
    });
    return m;
  }

  static List<String> allValues(Map<Integer, List<ConsumerRecord<String, String>>> records) {
    List<String> all = new ArrayList<>();
    records.values().forEach(rs -> rs.forEach(r -> all.add(r.value())));
    return all;
  }

  /** The first throwable in the cause chain of t that is one of the given types, else null. */
  static Throwable causeOfType(Throwable t, List<Class<? extends Throwable>> types) {
    for (Throwable c = t; c != null; c = c.getCause()) {
      for (Class<? extends Throwable> type : types) if (type.isInstance(c)) return c;
      if (c.getCause() == c) break;
    }
    return null;
  }

  /** Asserts that t, or something in its cause chain, is one of the given types. */
  static void assertCausedBy(Throwable t, String what, List<Class<? extends Throwable>> types) {
    assertNotNull(t, what + ": expected one of " + names(types) + " but nothing was thrown");
    if (causeOfType(t, types) == null) {
      fail(what + ": expected one of " + names(types) + " in the cause chain, got " + chain(t), t);
    }
  }

  static String chain(Throwable t) {
    StringBuilder sb = new StringBuilder();
    for (Throwable c = t; c != null; c = c.getCause()) {
      if (sb.length() > 0) sb.append(" <- caused by ");
      sb.append(c.getClass().getName()).append(": ").append(c.getMessage());
      if (c.getCause() == c) break;
    }
    return sb.toString();
  }

  private static String names(List<Class<? extends Throwable>> types) {
    StringJoiner j = new StringJoiner(" | ");
    types.forEach(t -> j.add(t.getSimpleName()));
    return j.toString();
  }

  interface ThrowingRunnable {
    void run() throws Exception;
  }

  /** Runs r and returns what it threw (null if nothing). */
  static Throwable thrown(ThrowingRunnable r) {
    try {
      r.run();
      return null;
    } catch (Throwable t) {
      return t;
    }
  }

  /** Polls cond every 100 ms until it holds; fails with the message after the timeout. */
  static void waitUntil(Duration timeout, String message, BooleanSupplier cond) throws InterruptedException {
    long deadline = System.nanoTime() + timeout.toNanos();
    while (!cond.getAsBoolean()) {
      if (System.nanoTime() > deadline) fail(message + " (waited " + timeout + ")");
      Thread.sleep(100);
    }
  }

  /** The classpath of this test JVM, for child JVMs (Surefire's full list when forked by it). */
  static String testClasspath() {
    String cp = System.getProperty("surefire.test.class.path");
    if (cp == null || cp.isEmpty()) cp = System.getProperty("java.class.path");
    return cp;
  }

  static String javaBinary() {
    return Path.of(System.getProperty("java.home"), "bin", "java").toString();
  }

  /** Result of a child JVM run to completion. */
  record Run(int exitCode, String stdout, String stderr) {
    @Override
    public String toString() {
      return "exit " + exitCode + "\n--- stdout ---\n" + stdout + "\n--- stderr ---\n" + stderr;
    }
  }

  /** Runs `java -cp <test classpath> mainClass args...` to completion (bounded). */
  static Run runJava(Path workDir, Duration timeout, String mainClass, String... args) throws Exception {
    List<String> cmd = new ArrayList<>(List.of(javaBinary(), "-cp", testClasspath(), mainClass));
    cmd.addAll(List.of(args));
    Path out = Files.createTempFile(workDir, "java-out", ".txt");
    Path err = Files.createTempFile(workDir, "java-err", ".txt");
    ProcessBuilder pb = new ProcessBuilder(cmd);
    pb.redirectOutput(out.toFile());
    pb.redirectError(err.toFile());
    pb.redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null")));
    Process p = pb.start();
    if (!p.waitFor(timeout.toMillis(), TimeUnit.MILLISECONDS)) {
      p.destroyForcibly().waitFor(10, TimeUnit.SECONDS);
      fail("`" + mainClass + " " + String.join(" ", args) + "` did not finish within " + timeout + "\n"
          + new Run(-1, Files.readString(out, StandardCharsets.UTF_8), Files.readString(err, StandardCharsets.UTF_8)));
    }
    return new Run(p.exitValue(), Files.readString(out, StandardCharsets.UTF_8), Files.readString(err, StandardCharsets.UTF_8));
  }
}
