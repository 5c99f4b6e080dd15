package dev.oxbow.compat;

import static dev.oxbow.compat.Clients.*;
import static org.junit.jupiter.api.Assertions.*;

import java.time.Duration;
import java.util.*;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.TransactionDescription;
import org.apache.kafka.clients.admin.TransactionState;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.InvalidProducerEpochException;
import org.apache.kafka.common.errors.ProducerFencedException;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Zombie fencing: a second producer with the same transactional.id bumps the epoch and aborts the
 * first one's open transaction; the first one can no longer write or commit.
 */
@Timeout(120)
class TransactionFencingTest {
  static final String TOPIC = "fenced";
  static final int PARTITIONS = 2;

  /**
   * What Kafka's client reports to a fenced producer: ProducerFencedException from EndTxn and
   * from produce under V1; produce answers INVALID_PRODUCER_EPOCH (InvalidProducerEpochException,
   * KIP-588) once the partition has seen the new epoch, which is always so under V2.
   */
  static final List<Class<? extends Throwable>> FENCED = List.of(ProducerFencedException.class, InvalidProducerEpochException.class);

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

  /** A begins a transaction on both partitions; B takes over the transactional.id. */
  void fenceAWithB(KafkaProducer<String, String> a, KafkaProducer<String, String> b, String txnId) throws Exception {
    a.initTransactions();
    int epochA = admin.describeTransactions(List.of(txnId)).description(txnId).get(30, TimeUnit.SECONDS).producerEpoch();
    a.beginTransaction();
    for (int p = 0; p < PARTITIONS; p++) a.send(new ProducerRecord<>(TOPIC, p, "a", "a-first-p" + p)).get(30, TimeUnit.SECONDS);

    TransactionDescription ongoing = admin.describeTransactions(List.of(txnId)).description(txnId).get(30, TimeUnit.SECONDS);
    assertEquals(TransactionState.ONGOING, ongoing.state(), "A's transaction before B starts");

    // Same transactional.id: the coordinator aborts A's open transaction and bumps the epoch.
    b.initTransactions();
    TransactionDescription afterB = admin.describeTransactions(List.of(txnId)).description(txnId).get(30, TimeUnit.SECONDS);
    assertTrue(afterB.producerEpoch() > epochA, "B's initTransactions must bump the epoch past A's " + epochA + ": " + afterB.producerEpoch());
    assertEquals(ongoing.producerId(), afterB.producerId(), "the transactional.id keeps its producer id");
    assertTrue(Set.of(TransactionState.EMPTY, TransactionState.COMPLETE_ABORT).contains(afterB.state()),
        "after B's initTransactions A's transaction is aborted, state " + afterB.state());
  }

  void assertOnlyBVisible(Set<String> bValues) throws Exception {
    List<TopicPartition> tps = partitions(TOPIC, PARTITIONS);
    awaitNoOpenTransactions(admin, tps, Duration.ofSeconds(30));
    try (KafkaConsumer<String, String> rc = consumer(broker.bootstrap, READ_COMMITTED)) {
      List<String> got = allValues(readToEnd(rc, tps, Duration.ofSeconds(30)));
      assertEquals(bValues, new HashSet<>(got), "read_committed sees B's commit and nothing the fenced producer A wrote");
      assertEquals(bValues.size(), got.size(), "read_committed duplicates: " + got);
    }
    try (KafkaConsumer<String, String> ru = consumer(broker.bootstrap, READ_UNCOMMITTED)) {
      List<String> got = allValues(readToEnd(ru, tps, Duration.ofSeconds(30)));
      for (int p = 0; p < PARTITIONS; p++) {
        assertTrue(got.contains("a-first-p" + p), "A's first records were written (and aborted): read_uncommitted got " + got);
      }
      for (String v : got) assertFalse(v.startsWith("a-after"), "a write of the fenced producer was accepted: " + v);
    }
  }

  void bCommits(KafkaProducer<String, String> b, Set<String> bValues) throws Exception {
    b.beginTransaction();
    for (int p = 0; p < PARTITIONS; p++) {
      String v = "b-p" + p;
      b.send(new ProducerRecord<>(TOPIC, p, "b", v)).get(30, TimeUnit.SECONDS);
      bValues.add(v);
    }
    b.commitTransaction();
  }

  @Test
  void fencedProducerCannotCommit() throws Exception {
    String txnId = "fence-commit";
    Set<String> bValues = new HashSet<>();
    try (KafkaProducer<String, String> a = transactionalProducer(broker.bootstrap, txnId);
         KafkaProducer<String, String> b = transactionalProducer(broker.bootstrap, txnId)) {
      fenceAWithB(a, b, txnId);
      Throwable commit = thrown(a::commitTransaction);
      assertCausedBy(commit, "A's commitTransaction after B's initTransactions (client " + clientVersion() + ")", FENCED);
      bCommits(b, bValues);
      a.close(Duration.ZERO);
    }
    assertOnlyBVisible(bValues);
  }

  @Test
  void fencedProducerCannotSendThenCannotCommit() throws Exception {
    String txnId = "fence-send";
    Set<String> bValues = new HashSet<>();
    try (KafkaProducer<String, String> a = transactionalProducer(broker.bootstrap, txnId);
         KafkaProducer<String, String> b = transactionalProducer(broker.bootstrap, txnId)) {
      fenceAWithB(a, b, txnId);
      // A goes on writing into its (aborted) transaction, on a partition it already wrote to.
      Throwable send = thrown(() -> a.send(new ProducerRecord<>(TOPIC, 0, "a", "a-after-fence")).get(30, TimeUnit.SECONDS));
      assertCausedBy(send, "A's send after B's initTransactions (client " + clientVersion() + ")", FENCED);
      Throwable commit = thrown(a::commitTransaction);
      assertNotNull(commit, "A's commitTransaction after a fenced send must fail");
      bCommits(b, bValues);
      a.close(Duration.ZERO);
    }
    assertOnlyBVisible(bValues);
  }
}
