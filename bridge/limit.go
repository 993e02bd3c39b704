package bridge

import (
	"net"
	"net/netip"
	"sync"
)

// limitListener caps concurrent connections: past the cap, Accept waits for
// a slot, so idle or slow clients queue in the kernel backlog instead of
// exhausting file descriptors. perIP caps one source address's share, so a
// single slow-loris client cannot take every slot from the CTI server;
// connections over it are closed at once.
func limitListener(l net.Listener, n, perIP int) net.Listener {
	return &limitedListener{Listener: l, sem: make(chan struct{}, n), perIP: perIP, byIP: map[netip.Addr]int{}}
}

type limitedListener struct {
	net.Listener
	sem   chan struct{}
	perIP int

	mu   sync.Mutex
	byIP map[netip.Addr]int
}

func (l *limitedListener) Accept() (net.Conn, error) {
	for {
		l.sem <- struct{}{}
		c, err := l.Listener.Accept()
		if err != nil {
			<-l.sem
			return nil, err
		}
		ip := remoteIP(c)
		l.mu.Lock()
		over := l.perIP > 0 && l.byIP[ip] >= l.perIP
		if !over {
			l.byIP[ip]++
		}
		l.mu.Unlock()
		if over {
			c.Close()
			<-l.sem
			continue
		}
		return &limitedConn{Conn: c, release: func() {
			l.mu.Lock()
			if l.byIP[ip]--; l.byIP[ip] <= 0 {
				delete(l.byIP, ip)
			}
			l.mu.Unlock()
			<-l.sem
		}}, nil
	}
}

func remoteIP(c net.Conn) netip.Addr {
	if ap, err := netip.ParseAddrPort(c.RemoteAddr().String()); err == nil {
		return ap.Addr().Unmap()
	}
	return netip.Addr{}
}

type limitedConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}
