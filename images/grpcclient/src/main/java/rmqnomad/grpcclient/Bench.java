package rmqnomad.grpcclient;

import java.util.Arrays;
import java.util.Locale;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import org.apache.rocketmq.client.apis.consumer.PushConsumer;
import org.apache.rocketmq.client.apis.producer.Producer;
import org.apache.rocketmq.client.consumer.DefaultMQPushConsumer;
import org.apache.rocketmq.client.consumer.listener.ConsumeConcurrentlyStatus;
import org.apache.rocketmq.client.consumer.listener.MessageListenerConcurrently;
import org.apache.rocketmq.client.producer.DefaultMQProducer;
import org.apache.rocketmq.client.producer.SendCallback;
import org.apache.rocketmq.client.producer.SendResult;
import org.apache.rocketmq.common.consumer.ConsumeFromWhere;
import org.apache.rocketmq.common.message.Message;
import org.apache.rocketmq.common.message.MessageExt;

/**
 * Produce/consume throughput of one path: {@code grpc} (5.x client through a proxy) or
 * {@code remoting} (the classic client to the NameServers and brokers). Both send N messages of
 * the same size with at most K in flight while a push consumer of a new group receives them.
 *
 * <p>Prints {@code produce_msgs_per_s} (N over the time from the first send to the last
 * acknowledgement), {@code consume_msgs_per_s} (N over the time from the first to the last
 * message received) and {@code end_to_end_s} (first send to last message received).
 */
final class Bench {
    private Bench() {
    }

    static int run(Main.Options o) throws Exception {
        o.require(o.topic != null && o.count > 0, "bench needs --topic T and --count N (N > 0)");
        String run = UUID.randomUUID().toString().substring(0, 8);
        long deadline = Main.deadline(o);
        Set<Integer> received = ConcurrentHashMap.newKeySet();
        AtomicLong first = new AtomicLong();
        AtomicLong last = new AtomicLong();
        byte[] body = new byte[o.size];
        Arrays.fill(body, (byte) 'x');
        long t0;
        long t1;
        switch (o.path) {
            case "grpc":
                AtomicLong probes = new AtomicLong();
                try (Producer p = Main.retry(() -> Main.producer(o), deadline, "start the producer");
                     PushConsumer c = Main.retry(() -> Main.consumer(o, run, received, probes, first, last),
                         deadline, "start the consumer")) {
                    Main.waitConsuming(p, o, run, probes, deadline);
                    t0 = System.nanoTime();
                    t1 = produceGrpc(p, o, run, body, deadline);
                    waitReceived(received, o, deadline);
                }
                break;
            case "remoting":
                o.require(o.namesrv != null, "--path remoting needs --namesrv IP:PORT;IP:PORT");
                DefaultMQProducer p = new DefaultMQProducer("rmq_nomad_bench_p_" + run);
                p.setNamesrvAddr(o.namesrv);
                p.setSendMsgTimeout(3000);
                DefaultMQPushConsumer c = new DefaultMQPushConsumer("rmq_nomad_bench_c_" + run);
                c.setNamesrvAddr(o.namesrv);
                c.setConsumeFromWhere(ConsumeFromWhere.CONSUME_FROM_FIRST_OFFSET);
                c.subscribe(o.topic, "*");
                c.registerMessageListener((MessageListenerConcurrently) (msgs, ctx) -> {
                    for (MessageExt m : msgs) {
                        if (run.equals(m.getUserProperty(Main.RUN_PROPERTY))) {
                            long now = System.nanoTime();
                            first.compareAndSet(0, now);
                            last.set(now);
                            received.add(Integer.parseInt(m.getUserProperty(Main.SEQ_PROPERTY)));
                        }
                    }
                    return ConsumeConcurrentlyStatus.CONSUME_SUCCESS;
                });
                try {
                    p.start();
                    c.start();
                    t0 = System.nanoTime();
                    t1 = produceRemoting(p, o, run, body, deadline);
                    waitReceived(received, o, deadline);
                } finally {
                    c.shutdown();
                    p.shutdown();
                }
                break;
            default:
                throw new Main.Options.UsageException("--path must be grpc or remoting, not " + o.path);
        }
        double produce = o.count / secs(t1 - t0);
        double consume = o.count / secs(Math.max(1, last.get() - first.get()));
        System.out.printf(Locale.ROOT, "path %s%n", o.path);
        System.out.printf(Locale.ROOT, "messages %d%nsize %d%ninflight %d%n", o.count, o.size, o.inflight);
        System.out.printf(Locale.ROOT, "produce_msgs_per_s %.0f%n", produce);
        System.out.printf(Locale.ROOT, "consume_msgs_per_s %.0f%n", consume);
        System.out.printf(Locale.ROOT, "end_to_end_s %.2f%n", secs(last.get() - t0));
        return 0;
    }

    private static double secs(long nanos) {
        return nanos / 1e9;
    }

    private static void waitReceived(Set<Integer> received, Main.Options o, long deadline) throws Exception {
        while (received.size() < o.count && Main.remainingMillis(deadline) > 0) {
            Thread.sleep(10);
        }
        if (received.size() < o.count) {
            throw new Main.Failure(String.format(Locale.ROOT, "timed out: received %d of %d messages",
                received.size(), o.count));
        }
    }

    /** Sends N messages asynchronously, K in flight; returns when the last was acknowledged. */
    private static long produceGrpc(Producer p, Main.Options o, String run, byte[] body, long deadline)
        throws Exception {
        Semaphore window = Main.window(o);
        Main.FirstError err = new Main.FirstError();
        for (int i = 0; i < o.count; i++) {
            acquire(window, deadline);
            err.check();
            p.sendAsync(Main.message(o, run, i, body, false)).whenComplete((r, t) -> {
                if (t != null) {
                    err.set(t);
                }
                window.release();
            });
        }
        drain(window, o, deadline);
        err.check();
        return System.nanoTime();
    }

    private static long produceRemoting(DefaultMQProducer p, Main.Options o, String run, byte[] body,
        long deadline) throws Exception {
        Semaphore window = Main.window(o);
        Main.FirstError err = new Main.FirstError();
        for (int i = 0; i < o.count; i++) {
            acquire(window, deadline);
            err.check();
            Message m = new Message(o.topic, "rmq-nomad", body);
            m.setKeys(run + "-" + i);
            m.putUserProperty(Main.RUN_PROPERTY, run);
            m.putUserProperty(Main.SEQ_PROPERTY, Integer.toString(i));
            p.send(m, new SendCallback() {
                @Override
                public void onSuccess(SendResult r) {
                    window.release();
                }

                @Override
                public void onException(Throwable t) {
                    err.set(t);
                    window.release();
                }
            });
        }
        drain(window, o, deadline);
        err.check();
        return System.nanoTime();
    }

    private static void acquire(Semaphore window, long deadline) throws Exception {
        if (!window.tryAcquire(Math.max(1, Main.remainingMillis(deadline)), TimeUnit.MILLISECONDS)) {
            throw new Main.Failure("timed out waiting for sends to be acknowledged");
        }
    }

    private static void drain(Semaphore window, Main.Options o, long deadline) throws Exception {
        int permits = Math.max(1, o.inflight);
        if (!window.tryAcquire(permits, Math.max(1, Main.remainingMillis(deadline)), TimeUnit.MILLISECONDS)) {
            throw new Main.Failure("timed out waiting for the last sends to be acknowledged");
        }
        window.release(permits);
    }
}
