package dev.oxbow.compat;

import java.time.Duration;
import java.util.*;
import org.apache.kafka.clients.consumer.*;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;

/**
 * A consume-transform-produce application, run as its own JVM by {@link ExactlyOnceCopierTest}:
 * a group member (subscribe, read_committed, no auto-commit) that copies every record of the
 * input topic to the same partition of the output topic, committing the consumed offsets inside
 * the producer's transaction with sendOffsetsToTransaction(offsets, consumer.groupMetadata()).
 * It runs until killed.
 *
 * <p>Arguments: bootstrap inputTopic outputTopic groupId transactionalId
 */
public final class ExactlyOnceCopier {
  public static void main(String[] args) throws Exception {
    String bootstrap = args[0];
    String input = args[1];
    String output = args[2];
    String group = args[3];
    String txnId = args[4];

    Properties pp = new Properties();
    pp.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
    pp.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
    pp.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
    pp.put(ProducerConfig.TRANSACTIONAL_ID_CONFIG, txnId);
    pp.put(ProducerConfig.LINGER_MS_CONFIG, "5");

    Properties cp = new Properties();
    cp.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
    cp.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
    cp.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
    cp.put(ConsumerConfig.GROUP_ID_CONFIG, group);
    cp.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed");
    cp.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
    cp.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
    // Small transactions, so that a kill lands in the middle of the stream.
    cp.put(ConsumerConfig.MAX_POLL_RECORDS_CONFIG, "50");
    // The killed predecessor's membership must expire quickly for the new member to get the
    // partitions (the broker's group.min.session.timeout.ms defaults to 6000).
    cp.put("session.timeout.ms", "6000");
    cp.put("heartbeat.interval.ms", "1000");

    try (KafkaProducer<String, String> producer = new KafkaProducer<>(pp);
         KafkaConsumer<String, String> consumer = new KafkaConsumer<>(cp)) {
      // Fences any previous instance with this transactional.id and aborts its open transaction.
      producer.initTransactions();
      System.out.println("initialized " + txnId);
      System.out.flush();
      consumer.subscribe(List.of(input));
      long copied = 0;
      while (true) {
        ConsumerRecords<String, String> records = consumer.poll(Duration.ofMillis(200));
        if (records.isEmpty()) continue;
        producer.beginTransaction();
        Map<TopicPartition, OffsetAndMetadata> offsets = new HashMap<>();
        for (ConsumerRecord<String, String> r : records) {
          producer.send(new ProducerRecord<>(output, r.partition(), r.key(), r.value()));
          offsets.put(new TopicPartition(r.topic(), r.partition()), new OffsetAndMetadata(r.offset() + 1));
        }
        // The copies are written (not yet committed); a kill from here on leaves them to be
        // aborted. The pause keeps most of the copier's time inside open transactions.
        producer.flush();
        System.out.println("open " + (copied + records.count()));
        System.out.flush();
        Thread.sleep(30);
        producer.sendOffsetsToTransaction(offsets, consumer.groupMetadata());
        producer.commitTransaction();
        copied += records.count();
        System.out.println("committed " + copied);
        System.out.flush();
      }
    }
  }
}
