package dev.oxbow.compat;

import static dev.oxbow.compat.Clients.*;
import static org.junit.jupiter.api.Assertions.*;

import java.time.Duration;
import java.util.*;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.FinalizedVersionRange;
import org.apache.kafka.clients.admin.TransactionDescription;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.TopicPartition;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * The transactional producer (V2 with the 4.x client, V1 with 3.x) interleaved with a plain
 * idempotent producer, read back under both isolation levels; the last stable offset.
 */
@Timeout(180)
class TransactionsTest {
  static final String TOPIC = "txn-mixed";
  static final int PARTITIONS = 3;

  OxbowBroker broker;
  Admin admin;

  @BeforeEach
  void start() throws Exception {
    broker = new OxbowBroker();
    admin = admin(broker.bootstrap);
    createTopic(admin, TOPIC, PARTITIONS);
  }

  @AfterEach
  void stop() {
    if (admin != null) admin.close(Duration.ofSeconds(5));
    broker.close();
  }

  /** One acknowledged write: where it landed and what it was. */
  record Written(int partition, long offset, String value) {}

  static List<Written> acked(List<Future<RecordMetadata>> futures, List<String> values) throws Exception {
    List<Written> out = new ArrayList<>();
    for (int i = 0; i < futures.size(); i++) {
      RecordMetadata md = futures.get(i).get(30, TimeUnit.SECONDS);
      out.add(new Written(md.partition(), md.offset(), values.get(i)));
    }
    return out;
  }

  /** partition -> values in offset order. */
  static Map<Integer, List<String>> byPartition(Collection<Written> ws) {
    Map<Integer, TreeMap<Long, String>> m = new TreeMap<>();
    for (int p = 0; p < PARTITIONS; p++) m.put(p, new TreeMap<>());
    for (Written w : ws) {
      String prev = m.get(w.partition()).put(w.offset(), w.value());
      assertNull(prev, "offset " + w.offset() + " of partition " + w.partition() + " acknowledged twice");
    }
    Map<Integer, List<String>> out = new TreeMap<>();
    m.forEach((p, os) -> out.put(p, new ArrayList<>(os.values())));
    return out;
  }

  @Test
  void brokerFinalizesTransactionVersion2() throws Exception {
    // The 4.x producer picks transactions V2 only when ApiVersions carries the finalized feature
    // transaction.version at level 2 (KIP-890); `kafka-features.sh describe` shows the same.
    Map<String, FinalizedVersionRange> finalized = admin.describeFeatures().featureMetadata().get(30, TimeUnit.SECONDS).finalizedFeatures();
    FinalizedVersionRange tv = finalized.get("transaction.version");
    assertNotNull(tv, "broker does not finalize transaction.version; finalized features: " + finalized);
    assertEquals(2, tv.maxVersionLevel(), "finalized transaction.version");
  }

  @Test
  void committedAndAbortedTransactionsInterleavedWithIdempotentProducer() throws Exception {
    String txnId = "txn-mixed-" + clientVersion();
    List<Written> committed = new ArrayList<>();
    List<Written> aborted = new ArrayList<>();
    List<Written> plainWrites = new ArrayList<>();
    int transactions = 8;
    int perPartition = 4;

    try (KafkaProducer<String, String> txn = transactionalProducer(broker.bootstrap, txnId);
         KafkaProducer<String, String> plain = idempotentProducer(broker.bootstrap)) {
      txn.initTransactions();
      int epochBefore = admin.describeTransactions(List.of(txnId)).description(txnId).get(30, TimeUnit.SECONDS).producerEpoch();

      for (int t = 0; t < transactions; t++) {
        boolean commit = t % 2 == 0 || t == 5; // commits 0,2,4,5,6; aborts 1,3,7
        String tag = (commit ? "commit-" : "abort-") + t;
        txn.beginTransaction();
        List<Future<RecordMetadata>> fs = new ArrayList<>();
        List<String> vs = new ArrayList<>();
        for (int j = 0; j < perPartition; j++) {
          for (int p = 0; p < PARTITIONS; p++) {
            String v = tag + "-p" + p + "-" + j;
            fs.add(txn.send(new ProducerRecord<>(TOPIC, p, "k" + j, v)));
            vs.add(v);
          }
          if (j == 1) {
            // The plain producer writes into the same partitions while the transaction is open.
            List<Future<RecordMetadata>> pf = new ArrayList<>();
            List<String> pv = new ArrayList<>();
            txn.flush();
            for (int p = 0; p < PARTITIONS; p++) {
              String v = "plain-during-" + t + "-p" + p;
              pf.add(plain.send(new ProducerRecord<>(TOPIC, p, "plain", v)));
              pv.add(v);
            }
            plainWrites.addAll(acked(pf, pv));
          }
        }
        txn.flush(); // every record acknowledged before the outcome, aborted ones too
        List<Written> ws = acked(fs, vs);
        if (commit) {
          txn.commitTransaction();
          committed.addAll(ws);
        } else {
          txn.abortTransaction();
          aborted.addAll(ws);
        }
        // And between transactions.
        List<Future<RecordMetadata>> pf = new ArrayList<>();
        List<String> pv = new ArrayList<>();
        for (int p = 0; p < PARTITIONS; p++) {
          String v = "plain-after-" + t + "-p" + p;
          pf.add(plain.send(new ProducerRecord<>(TOPIC, p, "plain", v)));
          pv.add(v);
        }
        plainWrites.addAll(acked(pf, pv));
      }

      int epochAfter = admin.describeTransactions(List.of(txnId)).description(txnId).get(30, TimeUnit.SECONDS).producerEpoch();
      if (clientUsesTransactionsV2()) {
        assertTrue(epochAfter > epochBefore, "transactions V2 (client " + clientVersion()
            + ") bumps the producer epoch at every commit/abort: epoch " + epochBefore + " before, " + epochAfter + " after "
            + transactions + " transactions");
      } else {
        assertEquals(epochBefore, epochAfter, "transactions V1 (client " + clientVersion() + ") keeps the producer epoch across transactions");
      }
    }

    List<TopicPartition> tps = partitions(TOPIC, PARTITIONS);
    awaitNoOpenTransactions(admin, tps, Duration.ofSeconds(30));
    List<Written> visible = new ArrayList<>(plainWrites);
    visible.addAll(committed);
    List<Written> everything = new ArrayList<>(visible);
    everything.addAll(aborted);

    try (KafkaConsumer<String, String> rc = consumer(broker.bootstrap, READ_COMMITTED)) {
      Map<Integer, List<ConsumerRecord<String, String>>> got = readToEnd(rc, tps, Duration.ofSeconds(30));
      List<String> all = allValues(got);
      for (String v : all) assertFalse(v.startsWith("abort-"), "read_committed returned aborted record " + v);
      assertEquals(new HashSet<>(all).size(), all.size(), "read_committed returned a record twice");
      assertEquals(byPartition(visible), values(got),
          "read_committed: every committed and non-transactional record exactly once, in offset order, no aborted record");
      for (List<ConsumerRecord<String, String>> rs : got.values()) {
        for (ConsumerRecord<String, String> r : rs) {
          assertFalse(r.key() == null && r.value() == null, "a control record (transaction marker) reached the application");
        }
      }
    }
    try (KafkaConsumer<String, String> ru = consumer(broker.bootstrap, READ_UNCOMMITTED)) {
      Map<Integer, List<ConsumerRecord<String, String>>> got = readToEnd(ru, tps, Duration.ofSeconds(30));
      assertEquals(byPartition(everything), values(got),
          "read_uncommitted: committed, aborted and non-transactional records, in offset order");
    }
  }

  @Test
  void lastStableOffsetHoldsReadCommittedAtAnOpenTransactionUntilItCommits() throws Exception {
    String txnId = "txn-lso-" + clientVersion();
    List<TopicPartition> tps = partitions(TOPIC, PARTITIONS);
    try (KafkaProducer<String, String> txn = transactionalProducer(broker.bootstrap, txnId);
         KafkaProducer<String, String> plain = idempotentProducer(broker.bootstrap);
         KafkaConsumer<String, String> rc = consumer(broker.bootstrap, READ_COMMITTED);
         KafkaConsumer<String, String> ru = consumer(broker.bootstrap, READ_UNCOMMITTED)) {
      // Stable data first: 2 plain records per partition (offsets 0, 1).
      for (int p = 0; p < PARTITIONS; p++) {
        for (int i = 0; i < 2; i++) plain.send(new ProducerRecord<>(TOPIC, p, "plain", "before-p" + p + "-" + i)).get(30, TimeUnit.SECONDS);
      }
      txn.initTransactions();
      txn.beginTransaction();
      Map<Integer, Long> txnStart = new TreeMap<>();
      for (int p = 0; p < PARTITIONS; p++) {
        for (int i = 0; i < 3; i++) {
          RecordMetadata md = txn.send(new ProducerRecord<>(TOPIC, p, "txn", "open-p" + p + "-" + i)).get(30, TimeUnit.SECONDS);
          txnStart.putIfAbsent(p, md.offset());
        }
      }
      // Non-transactional records after the open transaction's first offset.
      Map<Integer, Long> highWatermark = new TreeMap<>();
      for (int p = 0; p < PARTITIONS; p++) {
        for (int i = 0; i < 2; i++) {
          RecordMetadata md = plain.send(new ProducerRecord<>(TOPIC, p, "plain", "after-p" + p + "-" + i)).get(30, TimeUnit.SECONDS);
          highWatermark.put(p, md.offset() + 1);
        }
      }
      for (int p = 0; p < PARTITIONS; p++) assertEquals(2L, txnStart.get(p), "first offset of the open transaction on partition " + p);

      // ListOffsets: read_committed stops at the LSO (the open transaction's first offset),
      // read_uncommitted at the high watermark.
      Map<TopicPartition, Long> rcEnd = rc.endOffsets(tps);
      Map<TopicPartition, Long> ruEnd = ru.endOffsets(tps);
      for (TopicPartition tp : tps) {
        assertEquals(txnStart.get(tp.partition()), rcEnd.get(tp), "read_committed endOffsets (LSO) of " + tp + " while the transaction is open");
        assertEquals(highWatermark.get(tp.partition()), ruEnd.get(tp), "read_uncommitted endOffsets (high watermark) of " + tp);
      }

      // A read_committed consumer gets the stable prefix and then nothing: not the open
      // transaction, not the plain records after it.
      rc.assign(tps);
      rc.seekToBeginning(tps);
      List<ConsumerRecord<String, String>> seen = new ArrayList<>();
      long until = System.currentTimeMillis() + 3000;
      while (System.currentTimeMillis() < until) rc.poll(Duration.ofMillis(200)).forEach(seen::add);
      for (ConsumerRecord<String, String> r : seen) {
        assertTrue(r.value().startsWith("before-"), "read_committed returned " + r.value() + " at " + r.partition() + "/" + r.offset()
            + " while the transaction starting at offset 2 is open");
      }
      assertEquals(2 * PARTITIONS, seen.size(), "read_committed before the commit: the stable prefix only, got " + seen);
      for (TopicPartition tp : tps) assertEquals(2L, rc.position(tp), "read_committed position of " + tp + " waits at the LSO");

      // read_uncommitted sees all of it.
      Map<Integer, List<String>> uncommitted = values(readToEnd(ru, tps, Duration.ofSeconds(30)));
      for (int p = 0; p < PARTITIONS; p++) {
        assertEquals(List.of("before-p" + p + "-0", "before-p" + p + "-1", "open-p" + p + "-0", "open-p" + p + "-1", "open-p" + p + "-2",
            "after-p" + p + "-0", "after-p" + p + "-1"), uncommitted.get(p), "read_uncommitted partition " + p);
      }

      txn.commitTransaction();

      // The same consumer now moves on, through the transaction and the records after it.
      Map<Integer, List<String>> rest = new TreeMap<>();
      for (int p = 0; p < PARTITIONS; p++) rest.put(p, new ArrayList<>());
      long deadline = System.currentTimeMillis() + 30_000;
      while (rest.values().stream().mapToInt(List::size).sum() < 5 * PARTITIONS && System.currentTimeMillis() < deadline) {
        for (ConsumerRecord<String, String> r : rc.poll(Duration.ofMillis(200))) rest.get(r.partition()).add(r.value());
      }
      for (int p = 0; p < PARTITIONS; p++) {
        assertEquals(List.of("open-p" + p + "-0", "open-p" + p + "-1", "open-p" + p + "-2", "after-p" + p + "-0", "after-p" + p + "-1"),
            rest.get(p), "read_committed partition " + p + " after the commit");
      }
      rcEnd = rc.endOffsets(tps);
      ruEnd = ru.endOffsets(tps);
      for (TopicPartition tp : tps) {
        assertEquals(highWatermark.get(tp.partition()) + 1, ruEnd.get(tp), "high watermark of " + tp + " after the commit marker (one offset)");
        assertEquals(ruEnd.get(tp), rcEnd.get(tp), "read_committed endOffsets of " + tp + " after the commit: the LSO is the high watermark");
      }
    }
  }
}
