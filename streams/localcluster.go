package streams

import (
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// LocalCluster is a JetStream cluster of several nats-servers inside this process,
// routed on loopback, each with a store directory of its own and every write synced
// before it is acknowledged (as in deploy/nats/node.conf). It measures and tests cluster
// mode on one machine (custody bench); production clusters run as separate servers
// (docker-compose.yml, scripts/cluster.sh).
type LocalCluster struct {
	servers []*server.Server
}

// StartLocalCluster starts n nodes with their stores under dir and waits until the
// cluster has elected its JetStream meta leader.
func StartLocalCluster(dir string, n int) (*LocalCluster, error) {
	if n < 1 {
		return nil, errors.New("local cluster: at least one node")
	}
	ports, err := freeLoopbackPorts(2 * n)
	if err != nil {
		return nil, err
	}
	var routes []string
	for i := range n {
		routes = append(routes, fmt.Sprintf("nats://127.0.0.1:%d", ports[n+i]))
	}
	c := &LocalCluster{}
	for i := range n {
		opts := &server.Options{
			ServerName: fmt.Sprintf("n%d", i+1),
			Host:       "127.0.0.1",
			Port:       ports[i],
			JetStream:  true,
			StoreDir:   filepath.Join(dir, fmt.Sprintf("n%d", i+1)),
			SyncAlways: true,
			NoSigs:     true,
			NoLog:      true,
			MaxPayload: 4 << 20,
		}
		if n > 1 {
			opts.Cluster = server.ClusterOpts{Name: "custody-local", Host: "127.0.0.1", Port: ports[n+i]}
			opts.Routes = server.RoutesFromStr(strings.Join(routes, ","))
		}
		srv, err := server.NewServer(opts)
		if err != nil {
			c.Shutdown()
			return nil, fmt.Errorf("local cluster n%d: %w", i+1, err)
		}
		srv.Start()
		c.servers = append(c.servers, srv)
	}
	for _, s := range c.servers {
		if !s.ReadyForConnections(30 * time.Second) {
			c.Shutdown()
			return nil, errors.New("local cluster: a node did not start")
		}
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		leader := false
		for _, s := range c.servers {
			leader = leader || s.JetStreamIsLeader()
		}
		if leader || n == 1 {
			return c, nil
		}
		if time.Now().After(deadline) {
			c.Shutdown()
			return nil, errors.New("local cluster: no JetStream meta leader elected")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// URL is every node's client URL, comma-separated.
func (c *LocalCluster) URL() string {
	var urls []string
	for _, s := range c.servers {
		urls = append(urls, s.ClientURL())
	}
	return strings.Join(urls, ",")
}

// Shutdown stops every node.
func (c *LocalCluster) Shutdown() {
	for _, s := range c.servers {
		s.Shutdown()
	}
	for _, s := range c.servers {
		s.WaitForShutdown()
	}
}

// freeLoopbackPorts reserves n distinct loopback ports and releases them for the
// servers (another process could take one in between; the start then fails).
func freeLoopbackPorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}
