#include "engine/file_watcher.hpp"

#include <sys/inotify.h>
#include <unistd.h>

#include <boost/asio.hpp>

#include "common/crash_report.hpp"

namespace mephisto {

namespace asio = boost::asio;

struct FileWatcher::Impl {
    asio::io_context io{1};
    asio::posix::stream_descriptor inotify{io};
    asio::steady_timer settle_timer{io};
    std::chrono::milliseconds settle{300};
    std::function<bool(const std::string&)> matches;
    std::function<void()> on_change;
    std::array<char, 16 * 1024> buffer{};

    void read() {
        inotify.async_read_some(asio::buffer(buffer), [this](boost::system::error_code ec, size_t n) {
            if (ec) return;  // closed: stopping
            bool changed = false;
            for (size_t at = 0; at + sizeof(inotify_event) <= n;) {
                const auto* ev = reinterpret_cast<const inotify_event*>(buffer.data() + at);
                const std::string name = ev->len ? ev->name : "";
                if (!name.empty() && matches(name)) changed = true;
                at += sizeof(inotify_event) + ev->len;
            }
            if (changed) {
                // Restart the quiet period: a copy writes in several steps, a rename in one.
                settle_timer.expires_after(settle);
                settle_timer.async_wait([this](boost::system::error_code wait_ec) {
                    if (!wait_ec) on_change();
                });
            }
            read();
        });
    }
};

Result<std::unique_ptr<FileWatcher>> FileWatcher::start(const std::vector<std::filesystem::path>& dirs,
                                                        std::function<bool(const std::string&)> matches,
                                                        std::chrono::milliseconds settle,
                                                        std::function<void()> on_change) {
    const int fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (fd < 0) return make_error(std::string("inotify: ") + std::strerror(errno));
    for (const auto& dir : dirs)
        // A write in progress (IN_MODIFY) restarts the quiet period; a finished write, a rename or a removal
        // ends it.
        if (inotify_add_watch(fd, dir.c_str(), IN_CLOSE_WRITE | IN_MOVED_TO | IN_MODIFY | IN_DELETE | IN_MOVED_FROM) < 0) {
            const std::string reason = std::strerror(errno);
            ::close(fd);
            return make_error("cannot watch " + dir.string() + ": " + reason);
        }
    std::unique_ptr<FileWatcher> watcher(new FileWatcher());
    watcher->impl_ = std::make_unique<Impl>();
    watcher->impl_->inotify.assign(fd);
    watcher->impl_->settle = settle;
    watcher->impl_->matches = std::move(matches);
    watcher->impl_->on_change = std::move(on_change);
    watcher->impl_->read();
    watcher->thread_ = std::thread([impl = watcher->impl_.get()] {
        crash_report::prepare_thread();  // a reload loads plugins on this thread
        impl->io.run();
    });
    return watcher;
}

Status FileWatcher::watch(const std::filesystem::path& dir) {
    // inotify_add_watch on the descriptor the watcher's thread reads: the kernel serialises the two.
    if (inotify_add_watch(impl_->inotify.native_handle(), dir.c_str(),
                          IN_CLOSE_WRITE | IN_MOVED_TO | IN_MODIFY | IN_DELETE | IN_MOVED_FROM) < 0)
        return make_error("cannot watch " + dir.string() + ": " + std::strerror(errno));
    return {};
}

std::function<bool(const std::string&)> FileWatcher::suffix(std::string suffix) {
    return [suffix = std::move(suffix)](const std::string& name) {
        return name.size() > suffix.size() && name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0;
    };
}

FileWatcher::~FileWatcher() {
    if (!impl_) return;
    asio::post(impl_->io, [impl = impl_.get()] {
        boost::system::error_code ignored;
        impl->settle_timer.cancel();
        impl->inotify.close(ignored);
        impl->io.stop();
    });
    if (thread_.joinable()) thread_.join();
}

}  // namespace mephisto
