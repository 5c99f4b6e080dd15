package dev.oxbow.compat;

import static org.junit.jupiter.api.Assertions.*;

import java.time.Duration;
import java.util.*;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.admin.*;
import org.apache.kafka.clients.consumer.*;
import org.apache.kafka.clients.producer.*;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** The Java producer with its default settings (idempotent, acks=all) and the consumer. */
@Timeout(120)
class ProducerConsumerTest {
  OxbowBroker broker;

  @BeforeEach
  void start() throws Exception {
    broker = new OxbowBroker("num.partitions=3");
  }

  @AfterEach
  void stop() {
    broker.close();
  }

  KafkaProducer<String, String> producer() {
    Properties p = new Properties();
    p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, broker.bootstrap);
    p.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
    p.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
    return new KafkaProducer<>(p); // defaults: enable.idempotence=true, acks=all
  }

  KafkaConsumer<String, String> consumer() {
    Properties p = new Properties();
    p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, broker.bootstrap);
    p.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
    p.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
    return new KafkaConsumer<>(p);
  }

  @Test
  void defaultIdempotentProducerRecordsReadBackExactlyOnceInOrder() throws Exception {
    int n = 3000;
    // partition -> values in acknowledged offset order
    Map<Integer, TreeMap<Long, String>> acked = new TreeMap<>();
    try (KafkaProducer<String, String> producer = producer()) {
      List<Future<RecordMetadata>> acks = new ArrayList<>();
      for (int i = 0; i < n; i++) acks.add(producer.send(new ProducerRecord<>("java-idem", "key-" + (i % 17), "v" + i)));
      for (int i = 0; i < n; i++) {
        RecordMetadata md = acks.get(i).get(30, TimeUnit.SECONDS);
        String previous = acked.computeIfAbsent(md.partition(), k -> new TreeMap<>()).put(md.offset(), "v" + i);
        assertNull(previous, "offset " + md.offset() + " acknowledged twice");
      }
    }
    assertTrue(acked.size() > 1, "17 keys over 3 partitions should use more than one partition");
    // Offsets per partition are dense from 0: no gaps, no duplicates.
    for (TreeMap<Long, String> os : acked.values()) {
      assertEquals(0L, os.firstKey());
      assertEquals(os.size() - 1L, os.lastKey());
    }
    try (KafkaConsumer<String, String> consumer = consumer()) {
      List<TopicPartition> parts = new ArrayList<>();
      for (int p : acked.keySet()) parts.add(new TopicPartition("java-idem", p));
      consumer.assign(parts);
      consumer.seekToBeginning(parts);
      Map<Integer, List<ConsumerRecord<String, String>>> read = new TreeMap<>();
      Map<String, List<Integer>> perKey = new HashMap<>();
      int got = 0;
      long deadline = System.currentTimeMillis() + 30_000;
      while (got < n && System.currentTimeMillis() < deadline) {
        for (ConsumerRecord<String, String> r : consumer.poll(Duration.ofMillis(200))) {
          read.computeIfAbsent(r.partition(), k -> new ArrayList<>()).add(r);
          perKey.computeIfAbsent(r.key(), k -> new ArrayList<>()).add(Integer.parseInt(r.value().substring(1)));
          got++;
        }
      }
      // Look briefly for anything beyond n (a duplicate).
      got += consumer.poll(Duration.ofMillis(500)).count();
      assertEquals(n, got, "records read back");
      for (Map.Entry<Integer, List<ConsumerRecord<String, String>>> e : read.entrySet()) {
        TreeMap<Long, String> want = acked.get(e.getKey());
        List<String> values = new ArrayList<>();
        for (ConsumerRecord<String, String> r : e.getValue()) {
          assertEquals(want.get(r.offset()), r.value(), "partition " + e.getKey() + " offset " + r.offset());
          values.add(r.value());
        }
        assertEquals(new ArrayList<>(want.values()), values, "partition " + e.getKey() + " order");
      }
      for (List<Integer> vs : perKey.values()) {
        List<Integer> sorted = new ArrayList<>(vs);
        Collections.sort(sorted);
        assertEquals(sorted, vs, "per-key order must hold");
      }
      Map<TopicPartition, Long> end = consumer.endOffsets(parts);
      assertEquals(n, end.values().stream().mapToLong(Long::longValue).sum(), "end offsets");
    }
  }

  @Test
  void offsetsForTimesAndBeginningEndOffsets() throws Exception {
    long base = System.currentTimeMillis() - 60_000;
    try (KafkaProducer<String, String> producer = producer()) {
      for (int i = 0; i < 10; i++) {
        producer.send(new ProducerRecord<>("java-times", 0, base + i * 1000L, "k", "v" + i)).get();
      }
    }
    try (KafkaConsumer<String, String> consumer = consumer()) {
      TopicPartition tp = new TopicPartition("java-times", 0);
      Map<TopicPartition, OffsetAndTimestamp> found = consumer.offsetsForTimes(Map.of(tp, base + 4500));
      assertEquals(5, found.get(tp).offset());
      assertEquals(base + 5000, found.get(tp).timestamp());
      assertNull(consumer.offsetsForTimes(Map.of(tp, base + 100_000)).get(tp));
      assertEquals(0L, consumer.beginningOffsets(List.of(tp)).get(tp));
      assertEquals(10L, consumer.endOffsets(List.of(tp)).get(tp));
    }
  }
}
