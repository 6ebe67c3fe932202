package rmqnomad.grpcclient;

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.Arrays;
import java.util.Collections;
import java.util.Locale;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import org.apache.rocketmq.client.apis.ClientConfiguration;
import org.apache.rocketmq.client.apis.ClientServiceProvider;
import org.apache.rocketmq.client.apis.consumer.ConsumeResult;
import org.apache.rocketmq.client.apis.consumer.FilterExpression;
import org.apache.rocketmq.client.apis.consumer.FilterExpressionType;
import org.apache.rocketmq.client.apis.consumer.PushConsumer;
import org.apache.rocketmq.client.apis.message.MessageView;
import org.apache.rocketmq.client.apis.producer.Producer;

/**
 * The RocketMQ 5.x gRPC client of the project's tests and benchmarks. It reaches the cluster
 * only through a proxy's address (the 5.x SDK's {@code Endpoints}).
 *
 * <pre>
 *   Main produce-consume --endpoints HOST:PORT --topic T --count N [--timeout S]
 *   Main keep-sending    --endpoints HOST:PORT --topic T --seconds S [--interval-ms MS]
 *   Main first-send      --endpoints HOST:PORT --topic T [--timeout S]
 *   Main bench --path grpc --endpoints HOST:PORT | --path remoting --namesrv IP:PORT;...
 *              --topic T --count N [--size BYTES] [--inflight K] [--timeout S]
 * </pre>
 *
 * <p>Results go to stdout as {@code key value} lines; progress and errors to stderr. Exit
 * status: 0 success, 1 failure or timeout, 2 usage error.
 */
public final class Main {
    static final String RUN_PROPERTY = "rmqNomadRun";
    static final String SEQ_PROPERTY = "rmqNomadSeq";
    static final String PROBE_PROPERTY = "rmqNomadProbe";

    private Main() {
    }

    public static void main(String[] args) {
        int rc;
        try {
            rc = run(args);
        } catch (Options.UsageException e) {
            System.err.println("error: " + e.getMessage());
            System.err.println(USAGE);
            rc = 2;
        } catch (Failure e) {
            System.err.println("error: " + e.getMessage());
            rc = 1;
        } catch (Exception e) {
            System.err.println("error: " + e);
            rc = 1;
        }
        System.out.flush();
        // The clients leave non-daemon threads behind; leave for sure.
        Runtime.getRuntime().halt(rc);
    }

    static final String USAGE = String.join("\n",
        "usage: Main produce-consume --endpoints HOST:PORT --topic T --count N [--timeout S]",
        "       Main keep-sending --endpoints HOST:PORT --topic T --seconds S [--interval-ms MS]",
        "       Main first-send --endpoints HOST:PORT --topic T [--timeout S]",
        "       Main bench --path grpc --endpoints HOST:PORT | --path remoting --namesrv IP:PORT;...",
        "                  --topic T --count N [--size BYTES] [--inflight K] [--timeout S]");

    static int run(String[] args) throws Exception {
        Options o = Options.parse(args);
        switch (o.command) {
            case "produce-consume":
                return produceConsume(o);
            case "keep-sending":
                return keepSending(o);
            case "first-send":
                return firstSend(o);
            case "bench":
                return Bench.run(o);
            case "help":
            case "-h":
            case "--help":
                System.err.println(USAGE);
                return 0;
            default:
                throw new Options.UsageException("unknown command " + o.command);
        }
    }

    static ClientServiceProvider provider() {
        return ClientServiceProvider.loadService();
    }

    /** Plain-text gRPC to the proxy (it also accepts TLS, with its test certificate). */
    static ClientConfiguration clientConfig(Options o) throws Options.UsageException {
        if (o.endpoints == null) {
            throw new Options.UsageException("--endpoints HOST:PORT (the proxy's stable address) is needed");
        }
        return ClientConfiguration.newBuilder()
            .setEndpoints(o.endpoints)
            .enableSsl(false)
            .setRequestTimeout(Duration.ofSeconds(3))
            .build();
    }

    static Producer producer(Options o) throws Exception {
        return provider().newProducerBuilder()
            .setClientConfiguration(clientConfig(o))
            .setTopics(o.topic)
            .setMaxAttempts(3)
            .build();
    }

    static org.apache.rocketmq.client.apis.message.Message message(Options o, String run, int seq, byte[] body,
        boolean probe) {
        org.apache.rocketmq.client.apis.message.MessageBuilder b = provider().newMessageBuilder()
            .setTopic(o.topic)
            .setTag("rmq-nomad")
            .setKeys(run + "-" + (probe ? "probe-" : "") + seq)
            .addProperty(RUN_PROPERTY, run)
            .addProperty(SEQ_PROPERTY, Integer.toString(seq))
            .setBody(body);
        if (probe) {
            b.addProperty(PROBE_PROPERTY, "true");
        }
        return b.build();
    }

    /**
     * A push consumer of a new group counting this run's messages. A new gRPC consumer group
     * starts at the queues' end, so callers send probes until one arrives before they count.
     */
    static PushConsumer consumer(Options o, String run, Set<Integer> received, AtomicLong probes,
        AtomicLong firstNanos, AtomicLong lastNanos) throws Exception {
        return provider().newPushConsumerBuilder()
            .setClientConfiguration(clientConfig(o))
            .setConsumerGroup("rmq_nomad_grpc_" + run)
            .setSubscriptionExpressions(Collections.singletonMap(o.topic,
                new FilterExpression("*", FilterExpressionType.TAG)))
            .setMessageListener((MessageView m) -> {
                if (!run.equals(m.getProperties().get(RUN_PROPERTY))) {
                    return ConsumeResult.SUCCESS;
                }
                if (m.getProperties().containsKey(PROBE_PROPERTY)) {
                    probes.incrementAndGet();
                    return ConsumeResult.SUCCESS;
                }
                long now = System.nanoTime();
                firstNanos.compareAndSet(0, now);
                lastNanos.set(now);
                received.add(Integer.parseInt(m.getProperties().get(SEQ_PROPERTY)));
                return ConsumeResult.SUCCESS;
            })
            .build();
    }

    /** Sends probes until the consumer got one: from then on it sees every new message. */
    static void waitConsuming(Producer p, Options o, String run, AtomicLong probes, long deadline)
        throws Exception {
        int seq = 0;
        while (probes.get() == 0) {
            if (remainingMillis(deadline) <= 0) {
                throw new Failure("timed out: the consumer received none of " + seq + " probe messages");
            }
            try {
                p.send(message(o, run, seq++, "probe".getBytes(StandardCharsets.UTF_8), true));
            } catch (Exception e) {
                System.err.println("probe send failed, retrying: " + oneLine(e));
            }
            sleepUntil(probes, 1000);
        }
    }

    private static void sleepUntil(AtomicLong probes, long millis) throws InterruptedException {
        long end = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(millis);
        while (probes.get() == 0 && System.nanoTime() < end) {
            Thread.sleep(20);
        }
    }

    private static int produceConsume(Options o) throws Exception {
        o.require(o.topic != null && o.count > 0, "produce-consume needs --topic T and --count N (N > 0)");
        long deadline = deadline(o);
        String run = UUID.randomUUID().toString().substring(0, 8);
        System.err.printf("proxy %s; topic %s, %d messages, run %s, timeout %d s%n",
            o.endpoints, o.topic, o.count, run, o.timeoutSeconds);
        Set<Integer> received = ConcurrentHashMap.newKeySet();
        AtomicLong probes = new AtomicLong();
        try (Producer p = retry(() -> producer(o), deadline, "start the producer");
             PushConsumer c = retry(() -> consumer(o, run, received, probes, new AtomicLong(), new AtomicLong()),
                 deadline, "start the consumer")) {
            long t0 = System.nanoTime();
            waitConsuming(p, o, run, probes, deadline);
            System.err.printf("consumer receiving after %d ms%n", TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - t0));
            byte[] body = ("rmq-nomad grpc test message " + run).getBytes(StandardCharsets.UTF_8);
            for (int i = 0; i < o.count; i++) {
                final int seq = i;
                retry(() -> p.send(message(o, run, seq, body, false)), deadline, "send message " + seq);
            }
            System.out.println("sent " + o.count);
            System.out.flush();
            while (received.size() < o.count && remainingMillis(deadline) > 0) {
                Thread.sleep(50);
            }
            if (received.size() < o.count) {
                throw new Failure(String.format(Locale.ROOT, "timed out after %d s: received %d of %d messages",
                    o.timeoutSeconds, received.size(), o.count));
            }
            System.out.println("received " + received.size());
            System.err.printf("sent and received in %d ms%n", TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - t0));
            return 0;
        }
    }

    /**
     * Sends one message every interval for the given time through the same producer and address,
     * and reports how many failed and the longest time without a successful send.
     */
    private static int keepSending(Options o) throws Exception {
        o.require(o.topic != null && o.seconds > 0, "keep-sending needs --topic T and --seconds S");
        long start = System.nanoTime();
        long end = start + TimeUnit.SECONDS.toNanos(o.seconds);
        String run = UUID.randomUUID().toString().substring(0, 8);
        long ok = 0;
        long failed = 0;
        long lastOk = start;
        long longestGap = 0;
        long nextReport = start + TimeUnit.SECONDS.toNanos(5);
        String firstFailure = null;
        String lastFailure = null;
        long okLast10s = 0;
        long last10s = end - TimeUnit.SECONDS.toNanos(10);
        try (Producer p = retry(() -> producer(o), start + TimeUnit.SECONDS.toNanos(60), "start the producer")) {
            System.out.println("started");
            System.out.flush();
            byte[] body = "keep-sending".getBytes(StandardCharsets.UTF_8);
            for (int seq = 0; System.nanoTime() < end; seq++) {
                try {
                    p.send(message(o, run, seq, body, false));
                    ok++;
                    long now = System.nanoTime();
                    if (now >= last10s) {
                        okLast10s++;
                    }
                    longestGap = Math.max(longestGap, now - lastOk);
                    lastOk = now;
                } catch (Exception e) {
                    failed++;
                    long at = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start);
                    String why = oneLine(e);
                    System.err.println("send failed at " + at + " ms: " + why);
                    if (firstFailure == null) {
                        firstFailure = at + " ms: " + why;
                    }
                    lastFailure = at + " ms: " + why;
                }
                if (System.nanoTime() >= nextReport) {
                    System.err.printf("progress ok %d failed %d%n", ok, failed);
                    nextReport += TimeUnit.SECONDS.toNanos(5);
                }
                Thread.sleep(o.intervalMillis);
            }
            longestGap = Math.max(longestGap, System.nanoTime() - lastOk);
        }
        System.out.println("ok " + ok);
        System.out.println("failed " + failed);
        System.out.println("ok_last_10s " + okLast10s);
        System.out.println("longest_gap_ms " + TimeUnit.NANOSECONDS.toMillis(longestGap));
        if (firstFailure != null) {
            System.out.println("first_failure " + firstFailure);
            System.out.println("last_failure " + lastFailure);
        }
        return ok > 0 ? 0 : 1;
    }

    /** Retries until one message is sent; prints when (Unix ms), so callers can time a start. */
    private static int firstSend(Options o) throws Exception {
        o.require(o.topic != null, "first-send needs --topic T");
        long deadline = deadline(o);
        String run = UUID.randomUUID().toString().substring(0, 8);
        byte[] body = "first".getBytes(StandardCharsets.UTF_8);
        int attempts = 0;
        while (true) {
            attempts++;
            try (Producer p = producer(o)) {
                p.send(message(o, run, 0, body, false));
                System.out.println("first_send_unix_ms " + System.currentTimeMillis());
                System.out.println("attempts " + attempts);
                return 0;
            } catch (Exception e) {
                if (remainingMillis(deadline) <= 0) {
                    throw new Failure("no message sent in " + o.timeoutSeconds + " s (" + attempts
                        + " attempts; last error: " + oneLine(e) + ")");
                }
                Thread.sleep(200);
            }
        }
    }

    interface Attempt<T> {
        T call() throws Exception;
    }

    /** Calls a until it succeeds or the deadline passes, one second apart. */
    static <T> T retry(Attempt<T> a, long deadline, String what) throws Exception {
        Exception last;
        while (true) {
            try {
                return a.call();
            } catch (Exception e) {
                last = e;
            }
            if (remainingMillis(deadline) <= 0) {
                throw new Failure("timed out: could not " + what + " (last error: " + oneLine(last) + ")");
            }
            System.err.println("could not " + what + ", retrying: " + oneLine(last));
            Thread.sleep(1000);
        }
    }

    static long deadline(Options o) {
        return System.nanoTime() + TimeUnit.SECONDS.toNanos(o.timeoutSeconds);
    }

    static long remainingMillis(long deadline) {
        return TimeUnit.NANOSECONDS.toMillis(deadline - System.nanoTime());
    }

    static String oneLine(Throwable e) {
        if (e == null) {
            return "none";
        }
        String s = e.getClass().getSimpleName() + ": " + e.getMessage();
        int nl = s.indexOf('\n');
        return nl < 0 ? s : s.substring(0, nl);
    }

    static final class Failure extends Exception {
        Failure(String message) {
            super(message);
        }
    }

    static final class Options {
        String command;
        String endpoints;
        String namesrv;
        String path = "grpc";
        String topic;
        int count;
        int size = 1024;
        int inflight = 64;
        int seconds;
        long intervalMillis = 100;
        long timeoutSeconds = 120;

        static final class UsageException extends Exception {
            UsageException(String message) {
                super(message);
            }
        }

        void require(boolean ok, String message) throws UsageException {
            if (!ok) {
                throw new UsageException(message);
            }
        }

        static Options parse(String[] args) throws UsageException {
            if (args.length == 0) {
                throw new UsageException("no command");
            }
            Options o = new Options();
            o.command = args[0];
            for (int i = 1; i < args.length; i++) {
                String a = args[i];
                if (i + 1 >= args.length) {
                    throw new UsageException(a + " needs a value");
                }
                String v = args[++i];
                switch (a) {
                    case "--endpoints": o.endpoints = v; break;
                    case "--namesrv": o.namesrv = v; break;
                    case "--path": o.path = v; break;
                    case "--topic": o.topic = v; break;
                    case "--count": o.count = num(a, v); break;
                    case "--size": o.size = num(a, v); break;
                    case "--inflight": o.inflight = num(a, v); break;
                    case "--seconds": o.seconds = num(a, v); break;
                    case "--interval-ms": o.intervalMillis = num(a, v); break;
                    case "--timeout": o.timeoutSeconds = num(a, v); break;
                    default: throw new UsageException("unknown argument " + a + " (" + Arrays.toString(args) + ")");
                }
            }
            return o;
        }

        private static int num(String name, String v) throws UsageException {
            try {
                return Integer.parseInt(v);
            } catch (NumberFormatException e) {
                throw new UsageException(name + " needs a number, not " + v);
            }
        }
    }

    /** Holds the first error of asynchronous sends. */
    static final class FirstError {
        final AtomicReference<Throwable> err = new AtomicReference<>();

        void set(Throwable t) {
            err.compareAndSet(null, t);
        }

        void check() throws Failure {
            Throwable t = err.get();
            if (t != null) {
                throw new Failure("a send failed: " + oneLine(t));
            }
        }
    }

    static Semaphore window(Options o) {
        return new Semaphore(Math.max(1, o.inflight));
    }
}
