package dev.oxbow.compat;

import static org.junit.jupiter.api.Assertions.*;

import java.time.Duration;
import java.util.*;
import java.util.concurrent.*;
import java.util.concurrent.atomic.AtomicBoolean;
import org.apache.kafka.clients.admin.*;
import org.apache.kafka.clients.consumer.*;
import org.apache.kafka.clients.producer.*;
import org.apache.kafka.common.GroupState;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** Consumer groups with the Java client: cooperative-sticky rebalancing and the AdminClient's group operations. */
@Timeout(180)
class ConsumerGroupsTest {
  OxbowBroker broker;

  @BeforeEach
  void start() throws Exception {
    broker = new OxbowBroker();
  }

  @AfterEach
  void stop() {
    broker.close();
  }

  Properties consumerProps(String group) {
    Properties p = new Properties();
    p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, broker.bootstrap);
    p.put(ConsumerConfig.GROUP_ID_CONFIG, group);
    p.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
    p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
    p.put(ConsumerConfig.PARTITION_ASSIGNMENT_STRATEGY_CONFIG, CooperativeStickyAssignor.class.getName());
    p.put(ConsumerConfig.SESSION_TIMEOUT_MS_CONFIG, "10000");
    p.put(ConsumerConfig.HEARTBEAT_INTERVAL_MS_CONFIG, "500");
    p.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
    p.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
    return p;
  }

  void produce(String topic, String prefix, int n) throws Exception {
    Properties p = new Properties();
    p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, broker.bootstrap);
    p.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
    p.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
    try (KafkaProducer<String, String> producer = new KafkaProducer<>(p)) {
      List<Future<RecordMetadata>> acks = new ArrayList<>();
      for (int i = 0; i < n; i++) acks.add(producer.send(new ProducerRecord<>(topic, prefix + i, prefix + i)));
      for (Future<RecordMetadata> f : acks) f.get(30, TimeUnit.SECONDS);
    }
  }

  /** A member that commits what it consumed before it gives partitions up, so the group sees each record once. */
  final class Member implements Runnable {
    final KafkaConsumer<String, String> consumer;
    final String topic;
    final Queue<String> seen;
    final AtomicBoolean running = new AtomicBoolean(true);
    final List<Set<Integer>> assigned = Collections.synchronizedList(new ArrayList<>());
    final Map<TopicPartition, OffsetAndMetadata> pending = new HashMap<>();
    final Thread thread = new Thread(this);
    volatile Throwable failure;

    Member(String group, String topic, Queue<String> seen) {
      this.consumer = new KafkaConsumer<>(consumerProps(group));
      this.topic = topic;
      this.seen = seen;
      thread.start();
    }

    @Override
    public void run() {
      try {
        consumer.subscribe(List.of(topic), new ConsumerRebalanceListener() {
          @Override
          public void onPartitionsRevoked(Collection<TopicPartition> parts) {
            commitPending();
          }

          @Override
          public void onPartitionsAssigned(Collection<TopicPartition> parts) {
            Set<Integer> now = new TreeSet<>();
            for (TopicPartition tp : consumer.assignment()) now.add(tp.partition());
            assigned.add(now);
          }
        });
        while (running.get()) {
          for (ConsumerRecord<String, String> r : consumer.poll(Duration.ofMillis(100))) {
            seen.add(r.value());
            pending.put(new TopicPartition(r.topic(), r.partition()), new OffsetAndMetadata(r.offset() + 1));
          }
          commitPending();
        }
        consumer.close(Duration.ofSeconds(10));
      } catch (Throwable t) {
        failure = t;
      }
    }

    void commitPending() {
      if (!pending.isEmpty()) {
        consumer.commitSync(new HashMap<>(pending));
        pending.clear();
      }
    }

    void stop() throws InterruptedException {
      running.set(false);
      thread.join(30_000);
      assertNull(failure, () -> "member failed: " + failure);
    }
  }

  static void waitFor(String what, long timeoutMs, Callable<Boolean> cond) throws Exception {
    long deadline = System.currentTimeMillis() + timeoutMs;
    while (System.currentTimeMillis() < deadline) {
      if (cond.call()) return;
      Thread.sleep(100);
    }
    fail("timed out waiting for " + what);
  }

  @Test
  void threeCooperativeStickyMembersSeeEveryRecordExactlyOnce() throws Exception {
    String topic = "java-orders", group = "java-g";
    try (Admin admin = Admin.create(Map.of(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, broker.bootstrap))) {
      admin.createTopics(List.of(new NewTopic(topic, 6, (short) 1))).all().get();
    }
    produce(topic, "a-", 1500);
    Queue<String> seen = new ConcurrentLinkedQueue<>();
    Member a = new Member(group, topic, seen);
    waitFor("first member to consume", 30_000, () -> seen.size() > 100);
    Member b = new Member(group, topic, seen);
    Member c = new Member(group, topic, seen);
    waitFor("three members to share six partitions", 60_000, () ->
        !b.assigned.isEmpty() && !c.assigned.isEmpty()
            && a.assigned.get(a.assigned.size() - 1).size() == 2
            && b.assigned.get(b.assigned.size() - 1).size() == 2
            && c.assigned.get(c.assigned.size() - 1).size() == 2);
    produce(topic, "b-", 1500);
    b.stop();
    produce(topic, "c-", 1500);
    Set<String> expected = new HashSet<>();
    for (String p : List.of("a-", "b-", "c-")) for (int i = 0; i < 1500; i++) expected.add(p + i);
    waitFor("every record", 60_000, () -> new HashSet<>(seen).containsAll(expected));
    a.stop();
    c.stop();
    List<String> all = new ArrayList<>(seen);
    assertEquals(expected.size(), all.size(), "a record was seen twice");
    assertEquals(expected, new HashSet<>(all));
  }

  @Test
  void adminClientGroupOperations() throws Exception {
    String topic = "java-admin", group = "java-admin-g";
    try (Admin admin = Admin.create(Map.of(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, broker.bootstrap))) {
      admin.createTopics(List.of(new NewTopic(topic, 2, (short) 1))).all().get();
      produce(topic, "x-", 100);
      // A member consumes and commits everything, then leaves.
      try (KafkaConsumer<String, String> consumer = new KafkaConsumer<>(consumerProps(group))) {
        consumer.subscribe(List.of(topic));
        int n = 0;
        long deadline = System.currentTimeMillis() + 30_000;
        while (n < 100 && System.currentTimeMillis() < deadline) n += consumer.poll(Duration.ofMillis(200)).count();
        assertEquals(100, n);
        ConsumerGroupDescription live = admin.describeConsumerGroups(List.of(group)).all().get().get(group);
        assertEquals(GroupState.STABLE, live.groupState());
        assertEquals(1, live.members().size());
        consumer.commitSync();
      }
      TopicPartition p0 = new TopicPartition(topic, 0), p1 = new TopicPartition(topic, 1);
      Map<TopicPartition, OffsetAndMetadata> committed =
          admin.listConsumerGroupOffsets(group).partitionsToOffsetAndMetadata().get();
      assertEquals(100, committed.get(p0).offset() + committed.get(p1).offset());

      Collection<GroupListing> listed = admin.listGroups().all().get();
      assertTrue(listed.stream().anyMatch(g -> g.groupId().equals(group)), "listGroups: " + listed);
      assertEquals(GroupState.EMPTY, admin.describeConsumerGroups(List.of(group)).all().get().get(group).groupState());

      // kafka-consumer-groups --reset-offsets --to-earliest, then --to-datetime.
      admin.alterConsumerGroupOffsets(group, Map.of(p0, new OffsetAndMetadata(0), p1, new OffsetAndMetadata(0))).all().get();
      committed = admin.listConsumerGroupOffsets(group).partitionsToOffsetAndMetadata().get();
      assertEquals(0, committed.get(p0).offset());
      Map<TopicPartition, ListOffsetsResult.ListOffsetsResultInfo> latest =
          admin.listOffsets(Map.of(p0, OffsetSpec.latest(), p1, OffsetSpec.latest())).all().get();
      admin.alterConsumerGroupOffsets(group, Map.of(
          p0, new OffsetAndMetadata(latest.get(p0).offset()), p1, new OffsetAndMetadata(latest.get(p1).offset()))).all().get();
      committed = admin.listConsumerGroupOffsets(group).partitionsToOffsetAndMetadata().get();
      assertEquals(100, committed.get(p0).offset() + committed.get(p1).offset());

      // --to-datetime: the first offset at or after a timestamp, per partition.
      long mid = System.currentTimeMillis() + 1;
      Thread.sleep(5);
      produce(topic, "late-", 10);
      Map<TopicPartition, ListOffsetsResult.ListOffsetsResultInfo> atTime =
          admin.listOffsets(Map.of(p0, OffsetSpec.forTimestamp(mid), p1, OffsetSpec.forTimestamp(mid))).all().get();
      admin.alterConsumerGroupOffsets(group, Map.of(
          p0, new OffsetAndMetadata(atTime.get(p0).offset()), p1, new OffsetAndMetadata(atTime.get(p1).offset()))).all().get();
      committed = admin.listConsumerGroupOffsets(group).partitionsToOffsetAndMetadata().get();
      assertEquals(100, committed.get(p0).offset() + committed.get(p1).offset(), "reset to the timestamp before the late records");

      // A consumer of the group resumes from the reset position: after a reset to earliest it sees all 110 again.
      admin.alterConsumerGroupOffsets(group, Map.of(p0, new OffsetAndMetadata(0), p1, new OffsetAndMetadata(0))).all().get();
      try (KafkaConsumer<String, String> consumer = new KafkaConsumer<>(consumerProps(group))) {
        consumer.subscribe(List.of(topic));
        int n = 0;
        long deadline = System.currentTimeMillis() + 30_000;
        while (n < 110 && System.currentTimeMillis() < deadline) n += consumer.poll(Duration.ofMillis(200)).count();
        assertEquals(110, n);
      }

      admin.deleteConsumerGroupOffsets(group, Set.of(p0)).all().get();
      committed = admin.listConsumerGroupOffsets(group).partitionsToOffsetAndMetadata().get();
      assertFalse(committed.containsKey(p0) && committed.get(p0) != null, "p0 offset should be gone: " + committed);

      admin.deleteConsumerGroups(List.of(group)).all().get();
      Collection<GroupListing> after = admin.listGroups().all().get();
      assertFalse(after.stream().anyMatch(g -> g.groupId().equals(group)), "group still listed: " + after);
    }
  }
}
