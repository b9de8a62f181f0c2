// store/image_files: the import format is told by content, and a path that is no image is refused naming it.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include "common/fs.hpp"
#include "image_tar_builder.hpp"
#include "image_test_util.hpp"
#include "store/image_files.hpp"

namespace berth::store {
namespace {

using image::LayerCompression;
using image::testing::build_layer;
using image::testing::dir;
using image::testing::file;
using image::testing::TempDir;

class ImportFormatDetect : public ::testing::Test {
protected:
    std::string write(const std::string& name, const std::string& data) {
        std::string p = tmp_.path() + "/" + name;
        EXPECT_TRUE(write_file(p, data));
        return p;
    }
    TempDir tmp_{"image-files"};
};

TEST_F(ImportFormatDetect, LayoutDirectoryNeedsAnOciLayoutFile) {
    const std::string d = tmp_.path() + "/layout";
    ASSERT_TRUE(mkdir_all(d));
    auto none = detect_import_format(d);
    ASSERT_FALSE(none);
    EXPECT_NE(none.error().message().find(d), std::string::npos) << none.error().message();
    EXPECT_NE(none.error().message().find("oci-layout"), std::string::npos) << none.error().message();
    write("layout/oci-layout", R"({"imageLayoutVersion":"1.0.0"})");
    auto f = detect_import_format(d);
    ASSERT_TRUE(f) << f.error().message();
    EXPECT_EQ(*f, ImportFormat::oci_layout);
}

TEST_F(ImportFormatDetect, ArchivesByTheirMembers) {
    // tar -C dir . writes "./" in front of every name.
    auto oci = write("oci.tar", build_layer({dir("./blobs"), file("./oci-layout", "{}"), file("./index.json", "{}")}));
    auto f = detect_import_format(oci);
    ASSERT_TRUE(f) << f.error().message();
    EXPECT_EQ(*f, ImportFormat::oci_archive);

    auto oci_gz = write("oci.tar.gz", build_layer({file("index.json", "{}")}, LayerCompression::gzip));
    f = detect_import_format(oci_gz);
    ASSERT_TRUE(f) << f.error().message();
    EXPECT_EQ(*f, ImportFormat::oci_archive);

    auto docker = write("docker.tar", build_layer({file("abc/layer.tar", "x"), file("manifest.json", "[]")}));
    f = detect_import_format(docker);
    ASSERT_TRUE(f) << f.error().message();
    EXPECT_EQ(*f, ImportFormat::docker_archive);

    // docker 25+ writes both: the OCI index wins.
    auto both =
        write("both.tar", build_layer({file("manifest.json", "[]"), file("index.json", "{}"), file("oci-layout", "{}")},
                                      LayerCompression::zstd));
    f = detect_import_format(both);
    ASSERT_TRUE(f) << f.error().message();
    EXPECT_EQ(*f, ImportFormat::oci_archive);
}

TEST_F(ImportFormatDetect, AnythingElseIsRefusedNamingThePath) {
    for (auto [name, data] : {std::pair<std::string, std::string>{"text", "hello, not a tar\n"},
                              {"other.tar", build_layer({file("etc/passwd", "root:x:0:0::/:/bin/sh\n")})},
                              {"empty", ""}}) {
        auto p = write(name, data);
        auto f = detect_import_format(p);
        ASSERT_FALSE(f) << name;
        EXPECT_NE(f.error().message().find(p), std::string::npos) << f.error().message();
    }
    auto missing = detect_import_format(tmp_.path() + "/missing");
    ASSERT_FALSE(missing);
    EXPECT_EQ(missing.error().code(), ENOENT);
    EXPECT_NE(missing.error().message().find(tmp_.path() + "/missing"), std::string::npos);
}

}  // namespace
}  // namespace berth::store
