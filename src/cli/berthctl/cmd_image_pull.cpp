// berthctl image pull: needs the registry client (store::pull_image), which this build does not have yet.
#include "image_commands.hpp"

namespace berth::ctl {

int image_pull(const GlobalOptions&, const std::vector<std::string>&) {
    return report(Error(ENOTSUP, "image pull: not supported yet: this build has no registry client "
                                 "(import an oci-archive or docker-archive instead)"));
}

}  // namespace berth::ctl
