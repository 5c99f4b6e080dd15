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
    Map<Integer, List<Long>> offsets = new TreeMap<>();
    try (KafkaProducer<String, String> producer = producer()) {
      List<Future<RecordMetadata>> acks = new ArrayList<>();
      for (int i = 0; i < n; i++) acks.add(producer.send(new ProducerRecord<>("java-idem", "key-" + (i % 17), "v" + i)));
      for (Future<RecordMetadata> f : acks) {
        RecordMetadata md = f.get(30, TimeUnit.SECONDS);
        offsets.computeIfAbsent(md.partition(), k -> new ArrayList<>()).add(md.offset());
      }
    }
    // Offsets per partition are dense and increasing: no gaps, no duplicates.
    for (List<Long> os : offsets.values()) {
      for (int i = 0; i < os.size(); i++) assertEquals((long) i, os.get(i));
    }
    try (KafkaConsumer<String, String> consumer = consumer()) {
      List<TopicPartition> parts = new ArrayList<>();
      for (int p : offsets.keySet()) parts.add(new TopicPartition("java-idem", p));
      consumer.assign(parts);
      consumer.seekToBeginning(parts);
      Map<String, List<Integer>> perKey = new HashMap<>();
      int got = 0;
      long deadline = System.currentTimeMillis() + 30_000;
      while (got < n && System.currentTimeMillis() < deadline) {
        for (ConsumerRecord<String, String> r : consumer.poll(Duration.ofMillis(200))) {
          perKey.computeIfAbsent(r.key(), k -> new ArrayList<>()).add(Integer.parseInt(r.value().substring(1)));
          got++;
        }
      }
      assertEquals(n, got);
      for (List<Integer> vs : perKey.values()) {
        List<Integer> sorted = new ArrayList<>(vs);
        Collections.sort(sorted);
        assertEquals(sorted, vs, "per-key order must hold");
      }
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
