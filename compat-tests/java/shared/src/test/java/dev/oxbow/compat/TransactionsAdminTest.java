package dev.oxbow.compat;

import static dev.oxbow.compat.Clients.*;
import static org.junit.jupiter.api.Assertions.*;

import java.time.Duration;
import java.util.*;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;
import org.apache.kafka.clients.admin.*;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.IsolationLevel;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.TransactionalIdNotFoundException;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * The transaction admin APIs (ListTransactions, DescribeTransactions, DescribeProducers,
 * WriteTxnMarkers through abortTransaction) through the AdminClient and through Kafka's own
 * kafka-transactions.sh (org.apache.kafka.tools.TransactionsCommand, same version as the client),
 * run as a separate JVM exactly as the script runs it.
 */
@Timeout(240)
class TransactionsAdminTest {
  static final String TOPIC = "adm";
  static final TopicPartition P0 = new TopicPartition(TOPIC, 0);
  static final TopicPartition P1 = new TopicPartition(TOPIC, 1);
  static final TopicPartition P2 = new TopicPartition(TOPIC, 2);
  static final String TOOL = "org.apache.kafka.tools.TransactionsCommand";

  OxbowBroker broker;
  Admin admin;
  final List<AutoCloseable> producers = new ArrayList<>();

  long plainPid;
  long openPid;
  int openEpoch;
  long donePid;
  long emptyPid;
  long openStartP0; // the open transaction's first offset on partition 0
  long openStartP2;
  long beforeOpenMs;

  @BeforeEach
  void start() throws Exception {
    // node.id 0, as `kafka-transactions.sh find-hanging --broker-id 0` is typically run.
    broker = new OxbowBroker("node.id=0");
    admin = admin(broker.bootstrap);
    createTopic(admin, TOPIC, 3);
    assertEquals(0, admin.describeCluster().nodes().get(30, TimeUnit.SECONDS).iterator().next().id(), "broker id");

    // Non-transactional data first: offsets 0..2 of partition 0.
    KafkaProducer<String, String> plain = idempotentProducer(broker.bootstrap);
    producers.add(plain);
    for (int i = 0; i < 3; i++) plain.send(new ProducerRecord<>(TOPIC, 0, "plain", "plain-" + i)).get(30, TimeUnit.SECONDS);

    KafkaProducer<String, String> empty = transactionalProducer(broker.bootstrap, "t-empty");
    producers.add(empty);
    empty.initTransactions();

    KafkaProducer<String, String> done = transactionalProducer(broker.bootstrap, "t-done");
    producers.add(done);
    done.initTransactions();
    done.beginTransaction();
    done.send(new ProducerRecord<>(TOPIC, 1, "done", "done-1")).get(30, TimeUnit.SECONDS);
    done.commitTransaction();

    KafkaProducer<String, String> open = transactionalProducer(broker.bootstrap, "t-open",
        Map.of(ProducerConfig.TRANSACTION_TIMEOUT_CONFIG, "600000"));
    producers.add(open);
    open.initTransactions();
    beforeOpenMs = System.currentTimeMillis();
    open.beginTransaction();
    openStartP0 = open.send(new ProducerRecord<>(TOPIC, 0, "open", "open-p0-0")).get(30, TimeUnit.SECONDS).offset();
    open.send(new ProducerRecord<>(TOPIC, 0, "open", "open-p0-1")).get(30, TimeUnit.SECONDS);
    openStartP2 = open.send(new ProducerRecord<>(TOPIC, 2, "open", "open-p2-0")).get(30, TimeUnit.SECONDS).offset();
    assertEquals(3, openStartP0, "first offset of t-open on partition 0");
    assertEquals(0, openStartP2, "first offset of t-open on partition 2");

    Map<String, TransactionDescription> d = admin.describeTransactions(List.of("t-empty", "t-done", "t-open")).all().get(30, TimeUnit.SECONDS);
    emptyPid = d.get("t-empty").producerId();
    donePid = d.get("t-done").producerId();
    openPid = d.get("t-open").producerId();
    openEpoch = d.get("t-open").producerEpoch();
    List<ProducerState> p0 = admin.describeProducers(List.of(P0)).partitionResult(P0).get(30, TimeUnit.SECONDS).activeProducers();
    plainPid = p0.stream().mapToLong(ProducerState::producerId).filter(id -> id != openPid).findFirst()
        .orElseThrow(() -> new AssertionError("the plain producer is not among the active producers of " + P0 + ": " + p0));
  }

  @AfterEach
  void stop() throws Exception {
    for (AutoCloseable p : producers) {
      if (p instanceof KafkaProducer<?, ?> kp) kp.close(Duration.ZERO);
    }
    if (admin != null) admin.close(Duration.ofSeconds(5));
    broker.close();
  }

  static Set<String> ids(Collection<TransactionListing> ls) {
    return ls.stream().map(TransactionListing::transactionalId).collect(Collectors.toCollection(TreeSet::new));
  }

  @Test
  void listAndDescribeTransactions() throws Exception {
    Collection<TransactionListing> all = admin.listTransactions().all().get(30, TimeUnit.SECONDS);
    Map<String, TransactionListing> byId = new TreeMap<>();
    for (TransactionListing l : all) byId.put(l.transactionalId(), l);
    assertEquals(Set.of("t-empty", "t-done", "t-open"), byId.keySet(), "listTransactions: " + all);
    assertEquals(TransactionState.EMPTY, byId.get("t-empty").state());
    assertEquals(TransactionState.COMPLETE_COMMIT, byId.get("t-done").state());
    assertEquals(TransactionState.ONGOING, byId.get("t-open").state());
    assertEquals(openPid, byId.get("t-open").producerId());
    assertEquals(donePid, byId.get("t-done").producerId());
    assertEquals(emptyPid, byId.get("t-empty").producerId());
    assertEquals(Set.of(0), admin.listTransactions().allByBrokerId().get(30, TimeUnit.SECONDS).keySet(), "coordinators answering ListTransactions");

    assertEquals(Set.of("t-open"), ids(admin.listTransactions(new ListTransactionsOptions().filterStates(List.of(TransactionState.ONGOING)))
        .all().get(30, TimeUnit.SECONDS)), "state filter Ongoing");
    assertEquals(Set.of("t-done", "t-empty"), ids(admin.listTransactions(new ListTransactionsOptions()
        .filterStates(List.of(TransactionState.COMPLETE_COMMIT, TransactionState.EMPTY))).all().get(30, TimeUnit.SECONDS)),
        "state filter CompleteCommit+Empty");
    assertEquals(Set.of(), ids(admin.listTransactions(new ListTransactionsOptions().filterStates(List.of(TransactionState.PREPARE_ABORT)))
        .all().get(30, TimeUnit.SECONDS)), "state filter PrepareAbort");
    assertEquals(Set.of("t-done"), ids(admin.listTransactions(new ListTransactionsOptions().filterProducerIds(Set.of(donePid)))
        .all().get(30, TimeUnit.SECONDS)), "producer id filter");

    TransactionDescription open = admin.describeTransactions(List.of("t-open")).description("t-open").get(30, TimeUnit.SECONDS);
    assertEquals(0, open.coordinatorId());
    assertEquals(TransactionState.ONGOING, open.state());
    assertEquals(600000, open.transactionTimeoutMs());
    assertEquals(Set.of(P0, P2), open.topicPartitions(), "partitions of the ongoing transaction");
    assertTrue(open.transactionStartTimeMs().isPresent(), "an ongoing transaction has a start time");
    long startMs = open.transactionStartTimeMs().getAsLong();
    assertTrue(startMs >= beforeOpenMs - 1000 && startMs <= System.currentTimeMillis() + 1000,
        "transaction start time " + startMs + " should be when the transaction began (" + beforeOpenMs + ")");

    TransactionDescription done = admin.describeTransactions(List.of("t-done")).description("t-done").get(30, TimeUnit.SECONDS);
    assertEquals(TransactionState.COMPLETE_COMMIT, done.state());
    assertEquals(Set.of(), done.topicPartitions(), "a completed transaction has no partitions");
    TransactionDescription empty = admin.describeTransactions(List.of("t-empty")).description("t-empty").get(30, TimeUnit.SECONDS);
    assertEquals(TransactionState.EMPTY, empty.state());
    assertEquals(60000, empty.transactionTimeoutMs(), "the producer's default transaction.timeout.ms");

    ExecutionException missing = assertThrows(ExecutionException.class,
        () -> admin.describeTransactions(List.of("no-such-id")).description("no-such-id").get(30, TimeUnit.SECONDS));
    assertInstanceOf(TransactionalIdNotFoundException.class, missing.getCause(), () -> "describe unknown id: " + chain(missing));
  }

  @Test
  void describeProducersShowsOpenTransactionStartOffset() throws Exception {
    Map<TopicPartition, DescribeProducersResult.PartitionProducerState> res =
        admin.describeProducers(List.of(P0, P1, P2)).all().get(30, TimeUnit.SECONDS);
    Map<Long, ProducerState> p0 = res.get(P0).activeProducers().stream().collect(Collectors.toMap(ProducerState::producerId, s -> s));
    assertEquals(Set.of(plainPid, openPid), p0.keySet(), "active producers of " + P0);
    assertEquals(OptionalLong.of(openStartP0), p0.get(openPid).currentTransactionStartOffset(), "t-open's transaction start offset on " + P0);
    assertEquals(openEpoch, p0.get(openPid).producerEpoch(), "t-open's epoch on " + P0);
    assertEquals(1, p0.get(openPid).lastSequence(), "t-open wrote sequences 0 and 1 on " + P0);
    assertEquals(OptionalLong.empty(), p0.get(plainPid).currentTransactionStartOffset(), "the idempotent producer has no transaction");
    assertEquals(2, p0.get(plainPid).lastSequence(), "the idempotent producer wrote sequences 0..2");

    List<ProducerState> p1 = res.get(P1).activeProducers();
    assertEquals(1, p1.size(), "active producers of " + P1 + ": " + p1);
    assertEquals(donePid, p1.get(0).producerId());
    assertEquals(OptionalLong.empty(), p1.get(0).currentTransactionStartOffset(), "t-done's transaction is committed");

    List<ProducerState> p2 = res.get(P2).activeProducers();
    assertEquals(1, p2.size(), "active producers of " + P2 + ": " + p2);
    assertEquals(OptionalLong.of(openStartP2), p2.get(0).currentTransactionStartOffset());
  }

  @Test
  void adminAbortTransactionReleasesTheLastStableOffset() throws Exception {
    assertEquals(openStartP0, endOffsets(admin, List.of(P0), IsolationLevel.READ_COMMITTED).get(P0), "LSO of " + P0 + " at the open transaction");
    // As `kafka-transactions.sh abort` does: find the producer by its transaction's start offset,
    // then WriteTxnMarkers(ABORT) to the partition leader.
    ProducerState ps = admin.describeProducers(List.of(P2)).partitionResult(P2).get(30, TimeUnit.SECONDS).activeProducers().stream()
        .filter(s -> s.currentTransactionStartOffset().equals(OptionalLong.of(openStartP2))).findFirst()
        .orElseThrow(() -> new AssertionError("no producer with an open transaction at " + P2 + " offset " + openStartP2));
    admin.abortTransaction(new AbortTransactionSpec(P2, ps.producerId(), (short) ps.producerEpoch(), ps.coordinatorEpoch().orElse(0)))
        .all().get(30, TimeUnit.SECONDS);
    awaitNoOpenTransactions(admin, List.of(P2), Duration.ofSeconds(10));
    assertEquals(OptionalLong.empty(), admin.describeProducers(List.of(P2)).partitionResult(P2).get(30, TimeUnit.SECONDS)
        .activeProducers().get(0).currentTransactionStartOffset(), "no open transaction on " + P2 + " after the abort");
    // Only that partition: partition 0 still waits for t-open.
    assertEquals(openStartP0, endOffsets(admin, List.of(P0), IsolationLevel.READ_COMMITTED).get(P0), "LSO of " + P0 + " untouched");
    try (KafkaConsumer<String, String> rc = consumer(broker.bootstrap, READ_COMMITTED)) {
      List<ConsumerRecord<String, String>> got = readToEnd(rc, List.of(P2), Duration.ofSeconds(20)).get(2);
      assertEquals(List.of(), got, "read_committed on " + P2 + " after the abort");
      assertEquals(2L, rc.position(P2), "past the aborted record and its marker");
    }
  }

  // ---------------------------------------------------------------------------------------------
  // kafka-transactions.sh

  Run tool(String... args) throws Exception {
    List<String> all = new ArrayList<>(List.of("--bootstrap-server", broker.bootstrap));
    all.addAll(List.of(args));
    return runJava(broker.dir, Duration.ofSeconds(90), TOOL, all.toArray(new String[0]));
  }

  Run toolOk(String... args) throws Exception {
    Run r = tool(args);
    assertEquals(0, r.exitCode(), () -> "kafka-transactions.sh " + String.join(" ", args) + " (client " + clientVersion() + "):\n" + r);
    return r;
  }

  /** A table printed by the tool: header cells and rows, split on the tool's tab separators. */
  static List<List<String>> table(Run r, String... header) {
    List<List<String>> rows = new ArrayList<>();
    for (String line : r.stdout().split("\n")) {
      if (line.isBlank()) continue;
      List<String> cells = new ArrayList<>();
      for (String c : line.split("\t")) cells.add(c.trim());
      rows.add(cells);
    }
    assertFalse(rows.isEmpty(), "tool printed nothing:\n" + r);
    assertEquals(List.of(header), rows.get(0), "header line:\n" + r);
    return rows.subList(1, rows.size());
  }

  @Test
  void kafkaTransactionsListDescribeAndDescribeProducers() throws Exception {
    List<List<String>> list = table(toolOk("list"), "TransactionalId", "Coordinator", "ProducerId", "TransactionState");
    Set<List<String>> want = Set.of(
        List.of("t-empty", "0", String.valueOf(emptyPid), TransactionState.EMPTY.toString()),
        List.of("t-done", "0", String.valueOf(donePid), TransactionState.COMPLETE_COMMIT.toString()),
        List.of("t-open", "0", String.valueOf(openPid), TransactionState.ONGOING.toString()));
    assertEquals(want, new HashSet<>(list), "kafka-transactions.sh list");

    List<List<String>> describe = table(toolOk("describe", "--transactional-id", "t-open"),
        "CoordinatorId", "TransactionalId", "ProducerId", "ProducerEpoch", "TransactionState", "TransactionTimeoutMs",
        "CurrentTransactionStartTimeMs", "TransactionDurationMs", "TopicPartitions");
    assertEquals(1, describe.size(), "describe rows: " + describe);
    List<String> row = describe.get(0);
    assertEquals(List.of("0", "t-open", String.valueOf(openPid), String.valueOf(openEpoch), TransactionState.ONGOING.toString(), "600000"),
        row.subList(0, 6), "describe --transactional-id t-open");
    assertNotEquals("None", row.get(6), "an ongoing transaction has a start time");
    assertTrue(Long.parseLong(row.get(7)) >= 0, "transaction duration " + row.get(7));
    assertEquals(Set.of("adm-0", "adm-2"), new HashSet<>(Arrays.asList(row.get(8).split(","))), "partitions of t-open");

    Run unknown = tool("describe", "--transactional-id", "no-such-id");
    assertEquals(1, unknown.exitCode(), "describe of an unknown transactional id fails:\n" + unknown);
    assertTrue(unknown.stderr().contains("Failed to describe transaction state of transactional-id `no-such-id`"), unknown.toString());

    List<List<String>> producers = table(toolOk("describe-producers", "--topic", TOPIC, "--partition", "0"),
        "ProducerId", "ProducerEpoch", "LatestCoordinatorEpoch", "LastSequence", "LastTimestamp", "CurrentTransactionStartOffset");
    Map<String, List<String>> byPid = new TreeMap<>();
    for (List<String> r : producers) byPid.put(r.get(0), r);
    assertEquals(Set.of(String.valueOf(plainPid), String.valueOf(openPid)), byPid.keySet(), "describe-producers rows: " + producers);
    assertEquals(String.valueOf(openStartP0), byPid.get(String.valueOf(openPid)).get(5), "t-open's CurrentTransactionStartOffset");
    assertEquals("1", byPid.get(String.valueOf(openPid)).get(3), "t-open's LastSequence");
    assertEquals("None", byPid.get(String.valueOf(plainPid)).get(5), "the idempotent producer has no transaction");
    assertEquals("2", byPid.get(String.valueOf(plainPid)).get(3), "the idempotent producer's LastSequence");
  }

  @Test
  void kafkaTransactionsFindHangingAndAbort() throws Exception {
    String[] hangingHeader = {"Topic", "Partition", "ProducerId", "ProducerEpoch", "CoordinatorEpoch", "StartOffset", "LastTimestamp", "Duration(min)"};
    // t-open is open on adm-0 and adm-2 but its coordinator knows about both partitions, so it is
    // not hanging: neither with the default 15-minute window nor when every open transaction is a
    // candidate (--max-transaction-timeout 0 makes the tool cross-check all of them with
    // ListTransactions by producer id and DescribeTransactions).
    assertEquals(List.of(), table(toolOk("find-hanging", "--broker-id", "0"), hangingHeader), "find-hanging --broker-id 0");
    Thread.sleep(1100);
    assertEquals(List.of(), table(toolOk("find-hanging", "--broker-id", "0", "--max-transaction-timeout", "0"), hangingHeader),
        "find-hanging --broker-id 0 --max-transaction-timeout 0");

    // A start offset where no transaction begins: the tool refuses.
    Run wrong = tool("abort", "--topic", TOPIC, "--partition", "0", "--start-offset", "1");
    assertEquals(1, wrong.exitCode(), "abort at an offset with no open transaction:\n" + wrong);
    assertTrue(wrong.stderr().contains("Could not find any open transactions starting at offset 1"), wrong.toString());

    // Abort t-open on adm-0 only, by its start offset.
    toolOk("abort", "--topic", TOPIC, "--partition", "0", "--start-offset", String.valueOf(openStartP0));
    awaitNoOpenTransactions(admin, List.of(P0), Duration.ofSeconds(10));
    List<List<String>> producers = table(toolOk("describe-producers", "--topic", TOPIC, "--partition", "0"),
        "ProducerId", "ProducerEpoch", "LatestCoordinatorEpoch", "LastSequence", "LastTimestamp", "CurrentTransactionStartOffset");
    for (List<String> r : producers) assertEquals("None", r.get(5), "no open transaction on adm-0 after abort: " + producers);
    assertEquals(openStartP2, endOffsets(admin, List.of(P2), IsolationLevel.READ_COMMITTED).get(P2), "adm-2 still waits for t-open");

    try (KafkaConsumer<String, String> rc = consumer(broker.bootstrap, READ_COMMITTED)) {
      List<String> got = new ArrayList<>();
      for (ConsumerRecord<String, String> r : readToEnd(rc, List.of(P0), Duration.ofSeconds(20)).get(0)) got.add(r.value());
      assertEquals(List.of("plain-0", "plain-1", "plain-2"), got, "read_committed on adm-0 after the abort");
    }
  }
}
