// A producer written with Kafka's own Java client, as another team's service would be: the
// topics it writes are what the consumer must read (issue 15). Compiled by tests/javaproducer.py
// into a temporary directory at test time; no class file is committed.
//
// stdin: one record a line, "KEY<TAB>VALUE", each base64, or "-" for null.
// stdout, at the end: one JSON line with what was sent, committed and aborted.
//
// Flags (all optional but --bootstrap and --topic):
//   --compression gzip|snappy|lz4|zstd|none
//   --transaction-size N       records per transaction (0: not transactional)
//   --abort-every K            abort transactions number K-1, 2K-1, ... (0: none), once
//                              their records are in the log
//   --headers                  give every record headers (text, binary, null, a repeated key)
//   --keyless                  send every record without its key (the sticky partitioner)
//   --pause-at N --pause-file P --resume-file R
//                              after N records, flush the open transaction, create P, and wait
//                              until R exists before going on
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Base64;
import java.util.Properties;
import java.io.BufferedReader;
import java.io.InputStreamReader;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.header.internals.RecordHeaders;
import org.apache.kafka.common.serialization.ByteArraySerializer;

public final class InteropProducer {
    private static String flag(String[] args, String name, String fallback) {
        for (int i = 0; i < args.length - 1; i++) {
            if (args[i].equals(name)) {
                return args[i + 1];
            }
        }
        return fallback;
    }

    private static boolean has(String[] args, String name) {
        for (String arg : args) {
            if (arg.equals(name)) {
                return true;
            }
        }
        return false;
    }

    private static byte[] decode(String field) {
        return field.equals("-") ? null : Base64.getDecoder().decode(field);
    }

    public static void main(String[] args) throws Exception {
        String topic = flag(args, "--topic", null);
        int transactionSize = Integer.parseInt(flag(args, "--transaction-size", "0"));
        int abortEvery = Integer.parseInt(flag(args, "--abort-every", "0"));
        long pauseAt = Long.parseLong(flag(args, "--pause-at", "-1"));
        boolean headers = has(args, "--headers");
        boolean keyless = has(args, "--keyless");
        boolean transactional = transactionSize > 0;

        Properties props = new Properties();
        props.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, flag(args, "--bootstrap", null));
        props.put(ProducerConfig.COMPRESSION_TYPE_CONFIG, flag(args, "--compression", "none"));
        props.put(ProducerConfig.ACKS_CONFIG, "all");
        props.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, "true");
        props.put(ProducerConfig.LINGER_MS_CONFIG, "5");
        if (transactional) {
            props.put(ProducerConfig.TRANSACTIONAL_ID_CONFIG, "interop-" + topic);
            // A paused transaction must outlive the pause (the broker allows up to 15 min).
            props.put(ProducerConfig.TRANSACTION_TIMEOUT_CONFIG, "600000");
        }
        ByteArraySerializer bytes = new ByteArraySerializer();
        long sent = 0;
        long abortedRecords = 0;
        int transactions = 0;
        int aborted = 0;
        int inTransaction = 0;
        try (KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(props, bytes, bytes);
             BufferedReader in = new BufferedReader(
                 new InputStreamReader(System.in, StandardCharsets.US_ASCII))) {
            if (transactional) {
                producer.initTransactions();
            }
            String line;
            while ((line = in.readLine()) != null) {
                if (line.isEmpty()) {
                    continue;
                }
                if (transactional && inTransaction == 0) {
                    producer.beginTransaction();
                }
                String[] fields = line.split("\t", -1);
                byte[] key = keyless ? null : decode(fields[0]);
                RecordHeaders recordHeaders = new RecordHeaders();
                if (headers) {
                    recordHeaders.add("trace-id", ("t-" + sent).getBytes(StandardCharsets.UTF_8));
                    recordHeaders.add("content-type", "application/json".getBytes(StandardCharsets.UTF_8));
                    recordHeaders.add("binary", new byte[] {0, 1, 2, (byte) 0xff});
                    recordHeaders.add("empty", null);
                    recordHeaders.add("order_id", "not-the-order-id".getBytes(StandardCharsets.UTF_8));
                    recordHeaders.add("order_id", "twice".getBytes(StandardCharsets.UTF_8));
                }
                producer.send(new ProducerRecord<>(topic, null, key, decode(fields[1]), recordHeaders));
                sent++;
                inTransaction++;
                if (sent == pauseAt) {
                    producer.flush();
                    Files.createFile(Path.of(flag(args, "--pause-file", null)));
                    Path resume = Path.of(flag(args, "--resume-file", null));
                    while (!Files.exists(resume)) {
                        Thread.sleep(50);
                    }
                }
                if (transactional && inTransaction == transactionSize) {
                    if (abortEvery > 0 && transactions % abortEvery == abortEvery - 1) {
                        // Written first, then aborted: otherwise the client drops what it
                        // has not sent yet, and the log would hold few aborted records.
                        producer.flush();
                        producer.abortTransaction();
                        aborted++;
                        abortedRecords += inTransaction;
                    } else {
                        producer.commitTransaction();
                    }
                    transactions++;
                    inTransaction = 0;
                }
            }
            if (transactional && inTransaction > 0) {
                producer.commitTransaction();
                transactions++;
            }
            producer.flush();
        }
        System.out.println("{\"records\": " + sent + ", \"transactions\": " + transactions
            + ", \"aborted_transactions\": " + aborted + ", \"aborted_records\": " + abortedRecords + "}");
    }
}
