// A sink that writes in bulk, Faust's `async for batch in stream.take(100, within=1)`: the host gathers up to
// 100 events (or what came within a second) and hands them to on_batch at once; the agent appends them to a
// file, one line per event, and makes them durable with one fsync per batch. The host acknowledges the batch's
// events only after on_batch returns, so an event is committed only once it is on disk: a crash redoes the
// last batch (at-least-once), it never loses one.
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include <mephisto/mephisto.hpp>

struct FileSink {
    int fd = -1;
    explicit FileSink(mephisto::Context& ctx) {
        const std::string path(ctx.param_or("path", "batch_sink.out"));
        fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (fd < 0) throw std::runtime_error("cannot open " + path + ": " + std::strerror(errno));
    }
    ~FileSink() {
        if (fd >= 0) ::close(fd);
    }
    FileSink(const FileSink&) = delete;
    FileSink& operator=(const FileSink&) = delete;

    mph_status on_batch(mephisto::Context& ctx, mephisto::Batch batch) {
        std::string lines;
        for (const mephisto::Event& event : batch) lines.append(event.value()).push_back('\n');
        for (size_t written = 0; written < lines.size();) {
            const ssize_t n = ::write(fd, lines.data() + written, lines.size() - written);
            if (n < 0 && errno == EINTR) continue;
            if (n < 0) throw mephisto::Error(std::string("write: ") + std::strerror(errno), MPH_RETRY);
            written += static_cast<size_t>(n);
        }
        if (::fsync(fd) != 0) throw mephisto::Error(std::string("fsync: ") + std::strerror(errno), MPH_RETRY);
        ctx.log_info("wrote a batch of ", batch.size(), " event(s)");
        return MPH_OK;
    }
};

MEPHISTO_PLUGIN("batch_sink", "1.0.0", mephisto::description("writes events to a file in batches, one fsync each"),
                mephisto::agent<FileSink>("sink", "appends each batch to a file and syncs it",
                                          {{.name = "path", .description = "the file to append to",
                                            .default_value = "batch_sink.out"}}));
