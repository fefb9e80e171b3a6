package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/meridian-ops/meridian/bus"
	"github.com/meridian-ops/meridian/schemas"
)

// maxDatagram is the largest UDP payload over IPv4; the receive buffer
// holds it so an oversized datagram is seen (and refused) whole, never
// truncated into something that looks valid.
const maxDatagram = 65_507

// UDPConfig configures the SDA sensor listener. The zero value listens on
// :7778.
type UDPConfig struct {
	Addr       string // default :7778
	ReadBuf    int    // SO_RCVBUF; default 4 MiB
	Queue      int    // hand-off between the receive loop and the publishers; default 8192
	Publishers int    // goroutines publishing detections; default 2
	Logger     *slog.Logger
}

// UDPListener receives detection datagrams and publishes them to
// sda.detections.<sensor_id>. The receive loop only decodes and hands
// off; when the hand-off is full the datagram is dropped and counted.
type UDPListener struct {
	cfg UDPConfig
	bus *bus.Bus
	log *slog.Logger

	mu   sync.Mutex
	conn *net.UDPConn
}

// NewUDP returns a listener publishing through b.
func NewUDP(b *bus.Bus, cfg UDPConfig) *UDPListener {
	if cfg.Addr == "" {
		cfg.Addr = ":7778"
	}
	if cfg.ReadBuf <= 0 {
		cfg.ReadBuf = 4 << 20
	}
	if cfg.Queue <= 0 {
		cfg.Queue = 8192
	}
	if cfg.Publishers <= 0 {
		cfg.Publishers = 2
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &UDPListener{cfg: cfg, bus: b, log: cfg.Logger}
}

// Listen binds the socket; Run calls it when the caller did not.
func (u *UDPListener) Listen() error {
	addr, err := net.ResolveUDPAddr("udp", u.cfg.Addr)
	if err != nil {
		return fmt.Errorf("gateway: udp address %q: %w", u.cfg.Addr, err)
	}
	c, err := net.ListenUDP("udp", addr)
	if err != nil {
		return fmt.Errorf("gateway: udp listen %s: %w", u.cfg.Addr, err)
	}
	if err := c.SetReadBuffer(u.cfg.ReadBuf); err != nil {
		u.log.Warn("gateway: cannot set UDP receive buffer", "bytes", u.cfg.ReadBuf, "err", err)
	}
	u.mu.Lock()
	u.conn = c
	u.mu.Unlock()
	return nil
}

// Addr is the bound address (nil before Listen).
func (u *UDPListener) Addr() net.Addr {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.conn == nil {
		return nil
	}
	return u.conn.LocalAddr()
}

// Run receives until ctx ends, then publishes what was handed off.
func (u *UDPListener) Run(ctx context.Context) error {
	if u.Addr() == nil {
		if err := u.Listen(); err != nil {
			return err
		}
	}
	nc, err := u.bus.Connect("meridian-gateway-udp")
	if err != nil {
		u.conn.Close()
		return err
	}
	defer nc.Close()
	js, err := bus.NewJetStream(nc)
	if err != nil {
		u.conn.Close()
		return err
	}
	queue := make(chan schemas.Detection, u.cfg.Queue)
	var wg sync.WaitGroup
	for range u.cfg.Publishers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			u.publish(js, queue)
		}()
	}
	u.log.Info("gateway UDP listening", "addr", u.Addr().String())
	go func() {
		<-ctx.Done()
		u.conn.Close()
	}()
	u.receive(queue)
	close(queue)
	wg.Wait()
	_ = nc.FlushTimeout(2 * time.Second)
	return nil
}

func (u *UDPListener) receive(queue chan<- schemas.Detection) {
	buf := make([]byte, maxDatagram)
	var malformedLogged time.Time
	for {
		n, from, err := u.conn.ReadFromUDP(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			u.log.Warn("gateway UDP read", "err", err)
			continue
		}
		d, err := schemas.DecodeDetection(buf[:n])
		if err != nil {
			udpTotal.WithLabelValues("malformed").Inc()
			if time.Since(malformedLogged) > time.Second { // rate-limited: a flood must not flood the log
				u.log.Warn("gateway UDP malformed datagram", "from", from.String(), "bytes", n, "err", err)
				malformedLogged = time.Now()
			}
			continue
		}
		select {
		case queue <- d:
		default:
			udpTotal.WithLabelValues("dropped").Inc()
		}
	}
}

func (u *UDPListener) publish(js jetstream.JetStream, queue <-chan schemas.Detection) {
	pub := bus.NewPublisher(js, 256, u.log)
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = pub.Close(ctx)
	}()
	for d := range queue {
		data, err := schemas.Marshal(&d)
		if err != nil {
			continue
		}
		err = pub.PublishAsync(context.Background(), bus.NewMsg(schemas.DetectionSubject(d.SensorID), data, ""),
			func(_ *jetstream.PubAck, err error) {
				if err != nil {
					udpTotal.WithLabelValues("failed").Inc()
					return
				}
				udpTotal.WithLabelValues("published").Inc()
			})
		if err != nil {
			udpTotal.WithLabelValues("failed").Inc()
		}
	}
}
