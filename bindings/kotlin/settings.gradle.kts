// Gradle packaging of the edrlink Kotlin bindings (Android AAR + plain JVM use).
// NOT run on the project's build machines (no Gradle, no Android SDK, no Maven
// Central there); tests/kotlin/run.sh compiles the same sources with kotlinc.
pluginManagement {
    repositories { google(); mavenCentral(); gradlePluginPortal() }
}
dependencyResolutionManagement {
    repositories { google(); mavenCentral() }
}
rootProject.name = "edrlink"
