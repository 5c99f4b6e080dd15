package dev.oxbow.compat;

import static dev.oxbow.compat.Clients.*;
import static org.junit.jupiter.api.Assertions.*;

import java.time.Duration;
import java.util.*;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.TransactionDescription;
import org.apache.kafka.clients.admin.TransactionState;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.InvalidProducerEpochException;
import org.apache.kafka.common.errors.InvalidTxnStateException;
import org.apache.kafka.common.errors.InvalidTxnTimeoutException;
import org.apache.kafka.common.errors.ProducerFencedException;
import org.apache.kafka.common.protocol.Errors;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * transaction.timeout.ms: the coordinator aborts a transaction left open past its timeout (and
 * bumps the epoch, KIP-588), and refuses a timeout above transaction.max.timeout.ms.
 */
@Timeout(120)
class TransactionTimeoutTest {
  static final String TOPIC = "txn-timeout";

  /**
   * What Kafka's client reports for a commit after the coordinator aborted the transaction on
   * timeout: the coordinator has bumped the epoch, so EndTxn is fenced (ProducerFencedException;
   * InvalidProducerEpochException where the client maps it so), or the transaction is no longer
   * the one being committed (InvalidTxnStateException).
   */
  static final List<Class<? extends Throwable>> TIMED_OUT =
      List.of(ProducerFencedException.class, InvalidProducerEpochException.class, InvalidTxnStateException.class);

  OxbowBroker broker;

  @AfterEach
  void stop() {
    if (broker != null) broker.close();
  }

  @Test
  void coordinatorAbortsTimedOutTransaction() throws Exception {
    broker = new OxbowBroker("transaction.abort.timed.out.transaction.cleanup.interval.ms=500");
    String txnId = "slow-" + clientVersion();
    TopicPartition tp = new TopicPartition(TOPIC, 0);
    try (Admin admin = admin(broker.bootstrap);
         KafkaProducer<String, String> slow = transactionalProducer(broker.bootstrap, txnId,
             Map.of(ProducerConfig.TRANSACTION_TIMEOUT_CONFIG, "2000"));
         KafkaProducer<String, String> plain = idempotentProducer(broker.bootstrap);
         KafkaConsumer<String, String> rc = consumer(broker.bootstrap, READ_COMMITTED)) {
      createTopic(admin, TOPIC, 1);
      plain.send(new ProducerRecord<>(TOPIC, 0, "plain", "before")).get(30, TimeUnit.SECONDS);
      slow.initTransactions();
      TransactionDescription init = admin.describeTransactions(List.of(txnId)).description(txnId).get(30, TimeUnit.SECONDS);
      assertEquals(2000, init.transactionTimeoutMs(), "transaction timeout as the producer asked");
      slow.beginTransaction();
      long start = slow.send(new ProducerRecord<>(TOPIC, 0, "slow", "slow-1")).get(30, TimeUnit.SECONDS).offset();
      plain.send(new ProducerRecord<>(TOPIC, 0, "plain", "after")).get(30, TimeUnit.SECONDS);
      long t0 = System.nanoTime();

      // The producer stalls. Within the timeout plus a few cleanup intervals the coordinator aborts.
      waitUntil(Duration.ofSeconds(20), "coordinator did not abort the transaction left open past transaction.timeout.ms=2000", () -> {
        try {
          TransactionDescription d = admin.describeTransactions(List.of(txnId)).description(txnId).get(30, TimeUnit.SECONDS);
          return d.state() == TransactionState.COMPLETE_ABORT;
        } catch (Exception e) {
          throw new AssertionError(e);
        }
      });
      long abortedAfterMs = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - t0);
      TransactionDescription aborted = admin.describeTransactions(List.of(txnId)).description(txnId).get(30, TimeUnit.SECONDS);
      assertTrue(aborted.producerEpoch() > init.producerEpoch(),
          "the timeout abort bumps the epoch (KIP-588): " + init.producerEpoch() + " -> " + aborted.producerEpoch());
      assertTrue(abortedAfterMs >= 1000, "aborted only " + abortedAfterMs + " ms after the send: before transaction.timeout.ms=2000");

      // read_committed moves past the aborted transaction.
      awaitNoOpenTransactions(admin, List.of(tp), Duration.ofSeconds(20));
      List<String> seen = new ArrayList<>();
      for (ConsumerRecord<String, String> r : readToEnd(rc, List.of(tp), Duration.ofSeconds(20)).get(0)) seen.add(r.value());
      assertEquals(List.of("before", "after"), seen, "read_committed after the timeout abort (slow-1 was at offset " + start + ")");

      // The stalled producer wakes up and tries to commit.
      Throwable commit = thrown(slow::commitTransaction);
      assertCausedBy(commit, "commitTransaction after the coordinator aborted on timeout (client " + clientVersion() + ")", TIMED_OUT);
      slow.close(Duration.ZERO);
    }
  }

  @Test
  void transactionTimeoutAboveBrokerMaximumIsRejected() throws Exception {
    broker = new OxbowBroker("transaction.max.timeout.ms=5000");
    try (Admin admin = admin(broker.bootstrap)) {
      createTopic(admin, TOPIC, 1);
    }
    try (KafkaProducer<String, String> p = transactionalProducer(broker.bootstrap, "too-long",
        Map.of(ProducerConfig.TRANSACTION_TIMEOUT_CONFIG, "10000"))) {
      // The broker answers InitProducerId with INVALID_TRANSACTION_TIMEOUT. Kafka's producer does
      // not map that code to InvalidTxnTimeoutException: initTransactions throws
      // KafkaException("Unexpected error in InitProducerIdResponse; " + the error's message), so
      // the error's documented message is how a user (and this test) recognises it.
      Throwable init = thrown(p::initTransactions);
      assertNotNull(init, "initTransactions with transaction.timeout.ms=10000 > transaction.max.timeout.ms=5000 must fail");
      String want = Errors.INVALID_TRANSACTION_TIMEOUT.message();
      boolean recognised = causeOfType(init, List.of(InvalidTxnTimeoutException.class)) != null;
      for (Throwable c = init; c != null && !recognised; c = c.getCause()) recognised = String.valueOf(c.getMessage()).contains(want);
      assertTrue(recognised, "initTransactions with transaction.timeout.ms=10000 > transaction.max.timeout.ms=5000: expected "
          + "INVALID_TRANSACTION_TIMEOUT (\"" + want + "\"), got " + chain(init));
    }
    // At the maximum it is fine.
    try (KafkaProducer<String, String> p = transactionalProducer(broker.bootstrap, "at-max",
        Map.of(ProducerConfig.TRANSACTION_TIMEOUT_CONFIG, "5000"))) {
      p.initTransactions();
      p.beginTransaction();
      p.send(new ProducerRecord<>(TOPIC, 0, "k", "v")).get(30, TimeUnit.SECONDS);
      p.commitTransaction();
    }
  }
}
