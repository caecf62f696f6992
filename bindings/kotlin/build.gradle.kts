// Android library (AAR) wrapping the uniffi-generated Kotlin (src/main/kotlin,
// committed and drift-checked) and the Rust cdylib built per ABI into
// src/main/jniLibs/<abi>/libedrlink_uniffi.so by ./build-android.sh.
// Not run here: see README.md ("What is verified").
plugins {
    id("com.android.library") version "8.7.3"
    id("org.jetbrains.kotlin.android") version "2.1.0"
    `maven-publish`
}

group = "org.edrlink"
version = "0.1.0"

android {
    namespace = "org.edrlink"
    compileSdk = 35
    defaultConfig {
        minSdk = 24
        consumerProguardFiles("consumer-rules.pro")
    }
    sourceSets["main"].java.srcDirs("src/main/kotlin")
    sourceSets["main"].jniLibs.srcDirs("src/main/jniLibs")
    compileOptions {
        sourceCompatibility = JavaVersion.VERSION_17
        targetCompatibility = JavaVersion.VERSION_17
    }
    publishing { singleVariant("release") { withSourcesJar() } }
}

kotlin { jvmToolchain(17) }

dependencies {
    // uniffi's Kotlin calls the native library through JNA (the AAR variant
    // ships JNA's own native dispatch library for every Android ABI).
    implementation("net.java.dev.jna:jna:5.13.0@aar")
}

publishing {
    publications {
        register<MavenPublication>("release") {
            afterEvaluate { from(components["release"]) }
            artifactId = "edrlink"
        }
    }
}
